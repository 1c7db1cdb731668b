//! Topic pattern matching as RabbitMQ: words split on '.', `*` is one word, `#` zero or more.

/// Whether a topic binding `pattern` matches `key`.
pub fn topic_match(pattern: &str, key: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    // An empty key is zero words, as an empty pattern.
    let p = if pattern.is_empty() { &[][..] } else { &p[..] };
    let k = if key.is_empty() { &[][..] } else { &k[..] };
    matches(p, k)
}

fn matches(p: &[&str], k: &[&str]) -> bool {
    // Iterative with memo over (i, j) to stay linear-ish on many '#'.
    let (n, m) = (p.len(), k.len());
    let mut reach = vec![vec![false; m + 1]; n + 1];
    reach[0][0] = true;
    for i in 0..=n {
        for j in 0..=m {
            if !reach[i][j] || i == n {
                continue;
            }
            match p[i] {
                "#" => {
                    for cell in reach[i + 1][j..=m].iter_mut() {
                        *cell = true;
                    }
                }
                "*" => {
                    if j < m {
                        reach[i + 1][j + 1] = true;
                    }
                }
                word => {
                    if j < m && k[j] == word {
                        reach[i + 1][j + 1] = true;
                    }
                }
            }
        }
    }
    reach[n][m]
}
