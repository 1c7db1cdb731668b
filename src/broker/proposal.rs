//! What one replicated batch of a queue carries: the queue actor proposes the commands
//! it gathered as one Raft log entry, capped by bytes so that a burst of big messages
//! travels as several entries instead of one no follower can take within an RPC's
//! deadline.

use crate::queue::QueueCommand;

/// Most bytes of commands (by [`QueueCommand::weight`]) in one proposal, unless its
/// first command alone is bigger (a single message of up to `--max-message-size` still
/// goes, alone).
pub(crate) const MAX_PROPOSAL_BYTES: usize = 4 << 20;

/// Take the longest prefix of `cmds` (and the matching prefix of `conts`, their
/// continuations) that weighs at most `max_bytes`, and at least one command; the rest
/// stays, in order, for the next proposal.
pub(crate) fn take_proposal<C>(
    cmds: &mut Vec<QueueCommand>,
    conts: &mut Vec<C>,
    max_bytes: usize,
) -> (Vec<QueueCommand>, Vec<C>) {
    debug_assert_eq!(cmds.len(), conts.len());
    let mut bytes = 0;
    let mut take = 0;
    for cmd in cmds.iter() {
        bytes += cmd.weight();
        if take > 0 && bytes > max_bytes {
            break;
        }
        take += 1;
    }
    if take == cmds.len() {
        return (std::mem::take(cmds), std::mem::take(conts));
    }
    let rest_cmds = cmds.split_off(take);
    let rest_conts = conts.split_off(take);
    (
        std::mem::replace(cmds, rest_cmds),
        std::mem::replace(conts, rest_conts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Message;
    use bytes::Bytes;

    fn enqueue(seq: u64, size: usize) -> QueueCommand {
        QueueCommand::Enqueue {
            enqueuer: 1,
            seq,
            message: Message {
                exchange: String::new(),
                routing_key: "q".into(),
                properties: Bytes::new(),
                body: Bytes::from(vec![0u8; size]),
            },
        }
    }

    fn seqs(cmds: &[QueueCommand]) -> Vec<u64> {
        cmds.iter()
            .map(|c| match c {
                QueueCommand::Enqueue { seq, .. } => *seq,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn small_commands_go_together() {
        let mut cmds: Vec<_> = (0..100).map(|i| enqueue(i, 16)).collect();
        let mut conts: Vec<u64> = (0..100).collect();
        let (taken, taken_conts) = take_proposal(&mut cmds, &mut conts, MAX_PROPOSAL_BYTES);
        assert_eq!(seqs(&taken), (0..100).collect::<Vec<_>>());
        assert_eq!(taken_conts, (0..100).collect::<Vec<_>>());
        assert!(cmds.is_empty() && conts.is_empty());
    }

    #[test]
    fn big_messages_are_split_in_order_and_one_oversized_goes_alone() {
        let mib = 1 << 20;
        // 16 x 1 MiB, then one 16 MiB, then 3 x 1 MiB.
        let mut cmds: Vec<_> = (0..16).map(|i| enqueue(i, mib)).collect();
        cmds.push(enqueue(16, 16 * mib));
        cmds.extend((17..20).map(|i| enqueue(i, mib)));
        let mut conts: Vec<u64> = (0..20).collect();
        let mut proposals = Vec::new();
        while !cmds.is_empty() {
            let (taken, taken_conts) = take_proposal(&mut cmds, &mut conts, 4 * mib);
            assert_eq!(
                seqs(&taken),
                taken_conts,
                "continuations stay with their commands"
            );
            let bytes: usize = taken.iter().map(QueueCommand::weight).sum();
            assert!(
                taken.len() == 1 || bytes <= 4 * mib,
                "a proposal of {} commands weighs {bytes} B",
                taken.len()
            );
            proposals.push(seqs(&taken));
        }
        assert_eq!(
            proposals,
            vec![
                vec![0, 1, 2],
                vec![3, 4, 5],
                vec![6, 7, 8],
                vec![9, 10, 11],
                vec![12, 13, 14],
                vec![15],
                vec![16],
                vec![17, 18, 19],
            ]
        );
    }
}
