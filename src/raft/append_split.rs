//! AppendEntries capped by bytes: openraft caps a request by its number of entries only,
//! so a few entries of big messages could make one RPC of hundreds of MiB that no
//! follower takes within a deadline (and that is retried the same way forever). A
//! request is cut into parts of at most [`MAX_APPEND_BYTES`] (a single bigger entry goes
//! alone), sent back to back, and their answers are folded into one answer to openraft:
//! a part that fails after earlier ones succeeded reports a partial success up to them.

use openraft::error::Unreachable;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::EntryPayload;

use super::types::{Entry, LogId, TypeConfig};

/// Most bytes of entries (by [`entry_weight`]) in one AppendEntries, unless its first
/// entry alone is bigger.
pub(crate) const MAX_APPEND_BYTES: usize = 8 << 20;

/// About how many bytes `entry` takes encoded.
pub(crate) fn entry_weight(entry: &Entry) -> usize {
    const FRAMING: usize = 48;
    match &entry.payload {
        EntryPayload::Normal(request) => FRAMING + request.body_len(),
        EntryPayload::Blank => FRAMING,
        EntryPayload::Membership(_) => 512,
    }
}

/// Cut `req` into requests of at most `max_bytes` of entries each (at least one entry
/// each; an entry-less request stays whole), each continuing where the previous ends.
pub(crate) fn split(
    req: AppendEntriesRequest<TypeConfig>,
    max_bytes: usize,
) -> Vec<AppendEntriesRequest<TypeConfig>> {
    let total: usize = req.entries.iter().map(entry_weight).sum();
    if total <= max_bytes || req.entries.len() <= 1 {
        return vec![req];
    }
    let AppendEntriesRequest {
        vote,
        prev_log_id,
        leader_commit,
        entries,
    } = req;
    let mut parts = Vec::new();
    let mut prev = prev_log_id;
    let mut current: Vec<Entry> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        let weight = entry_weight(&entry);
        if !current.is_empty() && bytes + weight > max_bytes {
            let last = current.last().map(|e| e.log_id);
            parts.push(AppendEntriesRequest {
                vote,
                prev_log_id: prev,
                leader_commit,
                entries: std::mem::take(&mut current),
            });
            prev = last;
            bytes = 0;
        }
        bytes += weight;
        current.push(entry);
    }
    parts.push(AppendEntriesRequest {
        vote,
        prev_log_id: prev,
        leader_commit,
        entries: current,
    });
    parts
}

/// Fold the answers to the parts of one split request (in order, each with the log id
/// of the part's last entry) into the answer to the whole: the first answer that is not
/// a full success decides; a part failing after earlier parts succeeded is a partial
/// success up to the last entry of those.
pub(crate) fn fold_answers(
    answers: impl IntoIterator<
        Item = (
            Option<LogId>,
            Result<AppendEntriesResponse<TypeConfig>, Unreachable<TypeConfig>>,
        ),
    >,
) -> Result<AppendEntriesResponse<TypeConfig>, Unreachable<TypeConfig>> {
    let mut matched: Option<Option<LogId>> = None;
    for (last, answer) in answers {
        let answer = match (answer, matched) {
            (Ok(AppendEntriesResponse::Success), _) => {
                matched = Some(last);
                continue;
            }
            (answer, None) => answer,
            (Ok(AppendEntriesResponse::HigherVote(vote)), _) => {
                Ok(AppendEntriesResponse::HigherVote(vote))
            }
            (Ok(AppendEntriesResponse::PartialSuccess(upto)), _) => {
                Ok(AppendEntriesResponse::PartialSuccess(upto))
            }
            (Ok(AppendEntriesResponse::Conflict) | Err(_), Some(upto)) => {
                Ok(AppendEntriesResponse::PartialSuccess(upto))
            }
        };
        return answer;
    }
    Ok(AppendEntriesResponse::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::network::TransportError;
    use crate::raft::types::{Request, RequestBody, Vote};
    use bytes::Bytes;
    use openraft::entry::RaftEntry;

    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::vote::RaftLeaderId;

    fn log_id(index: u64) -> LogId {
        LogId::new(LeaderId::new(1, 1).to_committed(), index)
    }

    fn entry(index: u64, size: usize) -> Entry {
        Entry::new(
            log_id(index),
            EntryPayload::Normal(Request {
                time_ms: 0,
                body: RequestBody::Queue(Bytes::from(vec![0u8; size])),
            }),
        )
    }

    fn request(sizes: &[usize]) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new(1, 1),
            prev_log_id: Some(log_id(9)),
            leader_commit: Some(log_id(9)),
            entries: sizes
                .iter()
                .enumerate()
                .map(|(i, size)| entry(10 + i as u64, *size))
                .collect(),
        }
    }

    fn indexes(part: &AppendEntriesRequest<TypeConfig>) -> (Option<u64>, Vec<u64>) {
        (
            part.prev_log_id.map(|id| id.index()),
            part.entries.iter().map(|e| e.log_id().index()).collect(),
        )
    }

    #[test]
    fn a_small_request_or_an_empty_one_stays_whole() {
        assert_eq!(split(request(&[100; 50]), MAX_APPEND_BYTES).len(), 1);
        assert_eq!(split(request(&[]), MAX_APPEND_BYTES).len(), 1);
        assert_eq!(split(request(&[64 << 20]), MAX_APPEND_BYTES).len(), 1);
    }

    #[test]
    fn big_entries_are_cut_into_chained_parts() {
        let mib = 1 << 20;
        let parts = split(
            request(&[3 * mib, 3 * mib, 3 * mib, 16 * mib, mib]),
            8 * mib,
        );
        let got: Vec<_> = parts.iter().map(indexes).collect();
        assert_eq!(
            got,
            vec![
                (Some(9), vec![10, 11]),
                (Some(11), vec![12]),
                (Some(12), vec![13]),
                (Some(13), vec![14]),
            ]
        );
        for part in &parts {
            assert_eq!(part.leader_commit, Some(log_id(9)));
            let bytes: usize = part.entries.iter().map(entry_weight).sum();
            assert!(part.entries.len() == 1 || bytes <= 8 * mib);
        }
    }

    fn unreachable() -> Unreachable<TypeConfig> {
        Unreachable::new(&TransportError("timed out".into()))
    }

    #[test]
    fn answers_fold_into_one() {
        use AppendEntriesResponse::*;
        let ok = || Ok(Success);
        let l = |i| Some(log_id(i));
        assert!(matches!(
            fold_answers([(l(11), ok()), (l(12), ok())]),
            Ok(Success)
        ));
        // The first part decides alone.
        assert!(matches!(
            fold_answers([(l(11), Ok(Conflict)), (l(12), ok())]),
            Ok(Conflict)
        ));
        assert!(fold_answers([(l(11), Err(unreachable())), (l(12), ok())]).is_err());
        // A later part failing: partial success up to the parts before it.
        for later in [Ok(Conflict), Err(unreachable())] {
            match fold_answers([(l(11), ok()), (l(12), later), (l(13), ok())]) {
                Ok(PartialSuccess(upto)) => assert_eq!(upto, l(11)),
                other => panic!("{other:?}"),
            }
        }
        match fold_answers([(l(11), ok()), (l(12), Ok(PartialSuccess(l(11))))]) {
            Ok(PartialSuccess(upto)) => assert_eq!(upto, l(11)),
            other => panic!("{other:?}"),
        }
        let higher = Vote::new(2, 2);
        match fold_answers([(l(11), ok()), (l(12), Ok(HigherVote(higher)))]) {
            Ok(HigherVote(v)) => assert_eq!(v, higher),
            other => panic!("{other:?}"),
        }
    }
}
