//! Property tests: random command logs folded through the machine and a naive reference
//! model, checking invariants after every step, and snapshot + replay == full replay.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;

use super::{
    ApplyMeta, EnqueuerId, Message, MsgId, QueueCommand, QueueEffect, QueueMachine, QueueReply,
};

const ENQUEUERS: u64 = 3;

type Outcome = (QueueReply, Vec<QueueEffect>);

/// The simplest machine that could be right: linear scans over vectors.
#[derive(Default)]
struct Model {
    next_id: MsgId,
    msgs: Vec<(MsgId, Message, bool)>,
    last_seq: Vec<(EnqueuerId, u64)>,
}

impl Model {
    fn enqueue(
        &mut self,
        enqueuer: EnqueuerId,
        seq: u64,
        message: &Message,
        assigned: bool,
    ) -> Outcome {
        match self.last_seq.iter_mut().find(|(e, _)| *e == enqueuer) {
            Some((_, last)) if seq <= *last => return (QueueReply::Duplicate, vec![]),
            Some((_, last)) => *last = seq,
            None => self.last_seq.push((enqueuer, seq)),
        }
        let msg_id = self.next_id;
        self.next_id += 1;
        self.msgs.push((msg_id, message.clone(), assigned));
        (
            QueueReply::Enqueued { msg_id },
            vec![QueueEffect::Available { msg_id }],
        )
    }

    fn apply(&mut self, cmd: &QueueCommand) -> Outcome {
        match cmd {
            QueueCommand::Enqueue {
                enqueuer,
                seq,
                message,
            }
            | QueueCommand::EnqueueAssigned {
                enqueuer,
                seq,
                message,
            } => {
                let assigned = matches!(cmd, QueueCommand::EnqueueAssigned { .. });
                self.enqueue(*enqueuer, *seq, message, assigned)
            }
            QueueCommand::EnqueueNext {
                enqueuer,
                seq,
                message,
                assigned,
            } => {
                if let Some(last) = self.last_seq(*enqueuer) {
                    if *seq > last + 1 {
                        return (QueueReply::OutOfOrder { expected: last + 1 }, vec![]);
                    }
                }
                self.enqueue(*enqueuer, *seq, message, *assigned)
            }
            QueueCommand::MarkDelivered { msg_ids } => {
                for (id, _, delivered) in &mut self.msgs {
                    if msg_ids.contains(id) {
                        *delivered = true;
                    }
                }
                (QueueReply::Ok, vec![])
            }
            QueueCommand::Settle { msg_ids } | QueueCommand::Discard { msg_ids } => {
                let mut removed = Vec::new();
                for id in msg_ids {
                    if let Some(pos) = self.msgs.iter().position(|(i, _, _)| i == id) {
                        self.msgs.remove(pos);
                        removed.push(*id);
                    }
                }
                let count = removed.len() as u64;
                let effects = if removed.is_empty() {
                    vec![]
                } else {
                    vec![QueueEffect::Removed { msg_ids: removed }]
                };
                (QueueReply::Removed { count }, effects)
            }
            QueueCommand::ForgetEnqueuer { enqueuer } => {
                self.last_seq.retain(|(e, _)| e != enqueuer);
                (QueueReply::Ok, vec![])
            }
        }
    }

    fn last_seq(&self, enqueuer: EnqueuerId) -> Option<u64> {
        self.last_seq
            .iter()
            .find(|(e, _)| *e == enqueuer)
            .map(|&(_, s)| s)
    }
}

/// How a generated enqueue picks its seq, relative to the highest seq sent so far.
#[derive(Clone, Debug)]
enum SeqPick {
    /// A new seq, `gap` above the highest sent (gaps of more than 1 happen).
    Next(u64),
    /// A resend of a seq `back` below the highest sent.
    Resend(u64),
}

/// How a generated mark/settle/discard names a message.
#[derive(Clone, Debug)]
enum IdPick {
    /// One of the messages currently in the queue (if any).
    Live(Index),
    /// Any id, often unknown or already removed.
    Any(MsgId),
}

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        enqueuer: EnqueuerId,
        seq: SeqPick,
        routing_key: u8,
        body: Vec<u8>,
        /// As `EnqueueAssigned` (handed to a consumer on commit).
        assigned: bool,
        /// As `EnqueueNext` (a skipped seq is refused).
        in_order: bool,
    },
    Mark(Vec<IdPick>),
    Settle(Vec<IdPick>),
    Discard(Vec<IdPick>),
    Forget(EnqueuerId),
}

fn seq_pick() -> impl Strategy<Value = SeqPick> {
    prop_oneof![
        3 => (1..4u64).prop_map(SeqPick::Next),
        1 => (0..4u64).prop_map(SeqPick::Resend),
    ]
}

fn id_picks() -> impl Strategy<Value = Vec<IdPick>> {
    let pick = prop_oneof![
        3 => any::<Index>().prop_map(IdPick::Live),
        1 => (0..64u64).prop_map(IdPick::Any),
    ];
    prop::collection::vec(pick, 0..4)
}

fn op() -> impl Strategy<Value = Op> {
    let enqueue = (
        0..ENQUEUERS,
        seq_pick(),
        0..3u8,
        prop::collection::vec(any::<u8>(), 0..24),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(enqueuer, seq, routing_key, body, assigned, in_order)| Op::Enqueue {
                enqueuer,
                seq,
                routing_key,
                body,
                assigned,
                in_order,
            },
        );
    prop_oneof![
        6 => enqueue,
        2 => id_picks().prop_map(Op::Mark),
        2 => id_picks().prop_map(Op::Settle),
        1 => id_picks().prop_map(Op::Discard),
        1 => (0..ENQUEUERS).prop_map(Op::Forget),
    ]
}

/// Turns generated ops into a concrete command log, using the model to find live ids.
fn concretize(ops: &[Op]) -> Vec<QueueCommand> {
    let mut model = Model::default();
    let mut sent: BTreeMap<EnqueuerId, u64> = BTreeMap::new();
    let mut cmds = Vec::with_capacity(ops.len());
    for op in ops {
        let ids = |picks: &[IdPick], model: &Model| -> Vec<MsgId> {
            picks
                .iter()
                .map(|pick| match pick {
                    IdPick::Live(ix) if !model.msgs.is_empty() => {
                        model.msgs[ix.index(model.msgs.len())].0
                    }
                    IdPick::Live(ix) => ix.index(64) as MsgId,
                    IdPick::Any(id) => *id,
                })
                .collect()
        };
        let cmd = match op {
            Op::Enqueue {
                enqueuer,
                seq,
                routing_key,
                body,
                assigned,
                in_order,
            } => {
                let highest = sent.entry(*enqueuer).or_insert(0);
                let seq = match seq {
                    SeqPick::Next(gap) => {
                        *highest += gap;
                        *highest
                    }
                    SeqPick::Resend(back) => highest.saturating_sub(*back),
                };
                let message = Message {
                    exchange: "ex".into(),
                    routing_key: format!("rk{routing_key}"),
                    properties: Bytes::from_static(&[0x10, 0x00, 0x02]),
                    body: Bytes::from(body.clone()),
                };
                if *in_order {
                    QueueCommand::EnqueueNext {
                        enqueuer: *enqueuer,
                        seq,
                        message,
                        assigned: *assigned,
                    }
                } else if *assigned {
                    QueueCommand::EnqueueAssigned {
                        enqueuer: *enqueuer,
                        seq,
                        message,
                    }
                } else {
                    QueueCommand::Enqueue {
                        enqueuer: *enqueuer,
                        seq,
                        message,
                    }
                }
            }
            Op::Mark(picks) => QueueCommand::MarkDelivered {
                msg_ids: ids(picks, &model),
            },
            Op::Settle(picks) => QueueCommand::Settle {
                msg_ids: ids(picks, &model),
            },
            Op::Discard(picks) => QueueCommand::Discard {
                msg_ids: ids(picks, &model),
            },
            Op::Forget(enqueuer) => QueueCommand::ForgetEnqueuer {
                enqueuer: *enqueuer,
            },
        };
        model.apply(&cmd);
        cmds.push(cmd);
    }
    cmds
}

fn command_log() -> impl Strategy<Value = Vec<QueueCommand>> {
    prop::collection::vec(op(), 0..150).prop_map(|ops| concretize(&ops))
}

fn meta(index: usize) -> ApplyMeta {
    ApplyMeta {
        index: index as u64 + 1,
        time_ms: 1_000 + index as u64,
    }
}

fn replay(m: &mut QueueMachine, cmds: &[QueueCommand], first_index: usize) -> Vec<Outcome> {
    cmds.iter()
        .enumerate()
        .map(|(i, cmd)| m.apply(meta(first_index + i), cmd.clone()))
        .collect()
}

/// The machine's own invariants, and agreement with the model's contents.
fn check_invariants(m: &QueueMachine, model: &Model) -> Result<(), TestCaseError> {
    let ids: Vec<MsgId> = m.iter().map(|(id, _)| id).collect();
    prop_assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not increasing: {ids:?}"
    );
    if let Some(&last) = ids.last() {
        prop_assert!(m.next_msg_id() > last);
    }
    prop_assert_eq!(m.next_msg_id(), model.next_id);
    prop_assert_eq!(m.len(), ids.len());
    prop_assert_eq!(m.iter().len(), ids.len());
    prop_assert_eq!(m.is_empty(), ids.is_empty());
    let bytes: u64 = m.iter().map(|(_, s)| s.message.body.len() as u64).sum();
    prop_assert_eq!(m.total_bytes(), bytes);

    let contents: Vec<(MsgId, &Message, bool)> = m
        .iter()
        .map(|(id, s)| (id, &s.message, s.delivered))
        .collect();
    let expected: Vec<(MsgId, &Message, bool)> = model
        .msgs
        .iter()
        .map(|(id, msg, d)| (*id, msg, *d))
        .collect();
    prop_assert_eq!(contents, expected);
    for (id, msg, delivered) in &model.msgs {
        let stored = m.get(*id);
        prop_assert!(stored.is_some_and(|s| &s.message == msg && s.delivered == *delivered));
    }
    prop_assert!(m.get(m.next_msg_id()).is_none());

    for enqueuer in 0..ENQUEUERS {
        prop_assert_eq!(m.last_seq(enqueuer), model.last_seq(enqueuer));
    }
    prop_assert_eq!(m.enqueuer_count(), model.last_seq.len());

    let mid = m.next_msg_id() / 2;
    let from_mid: Vec<MsgId> = m.range_from(mid).map(|(id, _)| id).collect();
    let expected_from_mid: Vec<MsgId> = ids.iter().copied().filter(|&id| id >= mid).collect();
    prop_assert_eq!(from_mid, expected_from_mid);
    Ok(())
}

proptest! {
    #[test]
    fn random_logs_match_the_model_and_keep_invariants(cmds in command_log()) {
        let mut m = QueueMachine::default();
        let mut model = Model::default();
        // (enqueuer, seq) pairs accepted since that enqueuer was last forgotten.
        let mut accepted: BTreeSet<(EnqueuerId, u64)> = BTreeSet::new();
        for (i, cmd) in cmds.iter().enumerate() {
            let got = m.apply(meta(i), cmd.clone());
            let want = model.apply(cmd);
            prop_assert_eq!(&got, &want, "command {} {:?}", i, cmd);
            match cmd {
                QueueCommand::Enqueue { enqueuer, seq, .. } => {
                    if matches!(got.0, QueueReply::Enqueued { .. }) {
                        prop_assert!(accepted.insert((*enqueuer, *seq)), "enqueued twice: {:?}", cmd);
                    }
                }
                QueueCommand::ForgetEnqueuer { enqueuer } => {
                    accepted.retain(|(e, _)| e != enqueuer);
                }
                _ => {}
            }
            check_invariants(&m, &model)?;
        }
    }

    #[test]
    fn snapshot_then_replay_equals_full_replay(cmds in command_log(), split in any::<Index>()) {
        let at = split.index(cmds.len() + 1);
        let mut full = QueueMachine::default();
        let full_outcomes = replay(&mut full, &cmds, 0);

        let mut prefix = QueueMachine::default();
        replay(&mut prefix, &cmds[..at], 0);
        let snapshot = prefix.to_snapshot();
        let mut restored = QueueMachine::from_snapshot(&snapshot).expect("own snapshot decodes");
        prop_assert_eq!(&restored, &prefix);
        let rest_outcomes = replay(&mut restored, &cmds[at..], at);
        prop_assert_eq!(&restored, &full);
        prop_assert_eq!(&rest_outcomes[..], &full_outcomes[at..]);
    }

    #[test]
    fn snapshot_round_trips_and_is_deterministic(cmds in command_log()) {
        let mut m = QueueMachine::default();
        replay(&mut m, &cmds, 0);
        let bytes = m.to_snapshot();
        let back = QueueMachine::from_snapshot(&bytes).expect("own snapshot decodes");
        prop_assert_eq!(back.to_snapshot(), bytes);
        prop_assert_eq!(back.total_bytes(), m.total_bytes());
        prop_assert_eq!(back, m);
    }

    #[test]
    fn truncated_snapshot_is_rejected(cmds in command_log(), cut in any::<Index>()) {
        let mut m = QueueMachine::default();
        replay(&mut m, &cmds, 0);
        let bytes = m.to_snapshot();
        let cut = cut.index(bytes.len());
        prop_assert!(QueueMachine::from_snapshot(&bytes[..cut]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_only_to_valid_machines(
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = vec![1u8];
        bytes.extend(body);
        if let Ok(m) = QueueMachine::from_snapshot(&bytes) {
            let ids: Vec<MsgId> = m.iter().map(|(id, _)| id).collect();
            prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(ids.last().is_none_or(|&last| last < m.next_msg_id()));
            let sum: u64 = m.iter().map(|(_, s)| s.message.body.len() as u64).sum();
            prop_assert_eq!(m.total_bytes(), sum);
            prop_assert_eq!(QueueMachine::from_snapshot(&m.to_snapshot()), Ok(m));
        }
    }
}
