//! Erlang term printing (`~p`, `~w`) for the frame-error texts RabbitMQ builds with `io_lib:format`.
//!
//! Only what those texts need: binaries, and small tuples of atoms and integers. `~p` breaks
//! terms that would pass column 78, indenting the continuation under the term, as OTP does.

/// Last column a `~p` term may reach before OTP breaks it over lines.
const LINE_END: usize = 78;

/// A term in a RabbitMQ frame-error reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Atom(&'static str),
    Int(u64),
    Tuple(Vec<Term>),
}

impl Term {
    fn flat(&self) -> String {
        match self {
            Term::Atom(a) => (*a).to_owned(),
            Term::Int(i) => i.to_string(),
            Term::Tuple(items) => {
                let inner: Vec<String> = items.iter().map(Term::flat).collect();
                format!("{{{}}}", inner.join(","))
            }
        }
    }

    /// `~p` of the term starting at column `col`.
    pub fn pretty(&self, col: usize) -> String {
        let flat = self.flat();
        match self {
            Term::Tuple(items) if col + flat.len() > LINE_END && items.len() > 1 => {
                let indent = format!(",\n{}", " ".repeat(col + 1));
                let inner: Vec<String> = items.iter().map(Term::flat).collect();
                format!("{{{}}}", inner.join(&indent))
            }
            _ => flat,
        }
    }
}

/// OTP's `io_lib:printable_latin1_list/1` for one byte.
fn printable(b: u8) -> bool {
    matches!(b, 32..=126 | 160..=255 | 8..=13 | 27)
}

/// `~w` of a binary: `<<1,2,3>>`.
pub fn binary_w(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("<<{}>>", items.join(","))
}

/// `~p` of a binary starting at column `col`: a string when every byte is printable
/// (`<<"abc">>`), else its bytes, filled over lines indented two past `col`.
pub fn binary_p(bytes: &[u8], col: usize) -> String {
    if !bytes.is_empty() && bytes.iter().all(|&b| printable(b)) {
        let mut s = String::from("<<\"");
        for &b in bytes {
            match b {
                b'"' => s.push_str("\\\""),
                b'\\' => s.push_str("\\\\"),
                b'\n' => s.push_str("\\n"),
                b'\r' => s.push_str("\\r"),
                b'\t' => s.push_str("\\t"),
                11 => s.push_str("\\v"),
                8 => s.push_str("\\b"),
                12 => s.push_str("\\f"),
                27 => s.push_str("\\e"),
                // Latin-1 above 127 is printed as the character itself.
                b => s.push(b as char),
            }
        }
        s.push_str("\">>");
        return s;
    }
    let flat = binary_w(bytes);
    if col + flat.len() <= LINE_END {
        return flat;
    }
    let mut out = String::from("<<");
    let mut at = col + 2;
    for (i, b) in bytes.iter().enumerate() {
        let item = if i + 1 == bytes.len() {
            format!("{b}>>")
        } else {
            format!("{b},")
        };
        if at + item.len() > LINE_END && i > 0 {
            out.push('\n');
            out.push_str(&" ".repeat(col + 2));
            at = col + 2;
        }
        out.push_str(&item);
        at += item.len();
    }
    out
}

/// Column after the last line of `text` (where the next character goes).
fn column(text: &str) -> usize {
    text.rsplit('\n').next().map_or(0, |l| l.chars().count())
}

/// `type ~p, ~s octets = ~p` with RabbitMQ's payload snippet (`rabbit_reader:payload_snippet`).
pub fn frame_snippet(frame_type: u8, payload: &[u8]) -> String {
    let (which, bytes) = if payload.len() <= 16 {
        ("all", payload)
    } else {
        ("first 16", &payload[..16])
    };
    let head = format!("type {frame_type}, {which} octets = ");
    let bin = binary_p(bytes, column(&head));
    format!("{head}{bin}")
}

/// `type ~p, ~s octets = ~p: ~p`, the text of RabbitMQ's frame errors.
pub fn frame_error(frame_type: u8, payload: &[u8], reason: &Term) -> String {
    let head = format!("{}: ", frame_snippet(frame_type, payload));
    let reason = reason.pretty(column(&head));
    format!("{head}{reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_marker(n: u64) -> Term {
        Term::Tuple(vec![Term::Atom("invalid_frame_end_marker"), Term::Int(n)])
    }

    // Expected texts were printed by OTP 25's io_lib:format on RabbitMQ 3.10.8's node.
    #[test]
    fn matches_otp_output() {
        assert_eq!(
            frame_error(
                1,
                &[0, 50, 0, 10, 0, 0, 6, 99, 109, 112, 45, 102, 101, 4, 0, 0, 9, 9],
                &end_marker(0)
            ),
            format!(
                "type 1, first 16 octets = <<0,50,0,10,0,0,6,99,109,112,45,102,101,4,0,0>>: {{invalid_frame_end_marker,\n{}0}}",
                " ".repeat(76)
            )
        );
        assert_eq!(
            frame_error(1, b"abcdefghijklmnopq", &end_marker(0)),
            "type 1, first 16 octets = <<\"abcdefghijklmnop\">>: {invalid_frame_end_marker,0}"
        );
        assert_eq!(
            frame_error(1, b"abcdefghijklmnopq", &end_marker(20)),
            format!(
                "type 1, first 16 octets = <<\"abcdefghijklmnop\">>: {{invalid_frame_end_marker,\n{}20}}",
                " ".repeat(51)
            )
        );
        assert_eq!(
            frame_error(9, b"abcd", &Term::Atom("unknown_frame")),
            "type 9, all octets = <<\"abcd\">>: unknown_frame"
        );
        assert_eq!(
            frame_error(3, b"a\nb\"c\\", &Term::Atom("unknown_frame")),
            "type 3, all octets = <<\"a\\nb\\\"c\\\\\">>: unknown_frame"
        );
        assert_eq!(
            frame_error(3, &[97, 98, 99, 0], &Term::Atom("unknown_frame")),
            "type 3, all octets = <<97,98,99,0>>: unknown_frame"
        );
        assert_eq!(
            frame_error(
                3,
                &[],
                &Term::Tuple(vec![
                    Term::Atom("frame_too_large"),
                    Term::Int(131172),
                    Term::Int(131064)
                ])
            ),
            "type 3, all octets = <<>>: {frame_too_large,131172,131064}"
        );
        // 17 octets: the text shows the first 16.
        let long = [
            1, 150, 100, 150, 100, 150, 100, 150, 100, 150, 100, 150, 100, 150, 100, 150, 7,
        ];
        assert_eq!(
            frame_error(1, &long, &Term::Atom("x")),
            format!(
                "type 1, first 16 octets = <<1,150,100,150,100,150,100,150,100,150,100,150,100,\n{}150,100,150>>: x",
                " ".repeat(28)
            )
        );
        let long = [
            1, 1, 1, 1, 100, 150, 100, 150, 100, 150, 100, 150, 100, 150, 100, 150, 7,
        ];
        assert_eq!(
            frame_error(1, &long, &Term::Atom("x")),
            format!(
                "type 1, first 16 octets = <<1,1,1,1,100,150,100,150,100,150,100,150,100,150,\n{}100,150>>: x",
                " ".repeat(28)
            )
        );
        let fits = [
            1, 1, 1, 1, 1, 1, 1, 1, 1, 10, 100, 100, 100, 150, 100, 150, 7,
        ];
        assert_eq!(
            frame_error(1, &fits, &Term::Atom("x")),
            "type 1, first 16 octets = <<1,1,1,1,1,1,1,1,1,10,100,100,100,150,100,150>>: x"
        );
        assert_eq!(
            frame_snippet(2, &[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
            "type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,1,0,0>>"
        );
        assert_eq!(frame_snippet(8, &[]), "type 8, all octets = <<>>");
        assert_eq!(binary_w(b"abc"), "<<97,98,99>>");
    }
}
