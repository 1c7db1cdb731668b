//! The answers of the metadata machine's most recent requests, by request id. Every
//! proposal goes in as [`MetaCommand::Request`](super::MetaCommand::Request) with an id
//! its proposer picked; a proposal retried after an unknown outcome (a lost reply, a
//! leader change) carries the same id, so if the first try committed the retry changes
//! nothing and gets the first answer: a `queue.delete` that committed does not answer
//! NOT_FOUND when it is retried. Replicated state (in the snapshot), so every member
//! answers the same; bounded to the last [`REMEMBERED`] requests (a retry comes within
//! seconds).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::MetaReply;

/// How many answers are kept.
pub const REMEMBERED: usize = 1024;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentRequests {
    /// Oldest first.
    answers: VecDeque<(u128, MetaReply)>,
}

impl RecentRequests {
    /// The answer request `id` got, if it was applied recently.
    pub fn answer(&self, id: u128) -> Option<&MetaReply> {
        self.answers
            .iter()
            .rev()
            .find(|(seen, _)| *seen == id)
            .map(|(_, reply)| reply)
    }

    /// Remember request `id`'s answer, forgetting the oldest beyond [`REMEMBERED`].
    pub fn record(&mut self, id: u128, reply: MetaReply) {
        if self.answers.len() == REMEMBERED {
            self.answers.pop_front();
        }
        self.answers.push_back((id, reply));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.answers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{ApplyMeta, MetaCommand, MetaState};

    const META: ApplyMeta = ApplyMeta {
        index: 1,
        time_ms: 0,
    };

    fn request(id: u128, command: MetaCommand) -> MetaCommand {
        MetaCommand::Request {
            id,
            command: Box::new(command),
        }
    }

    #[test]
    fn a_retried_request_gets_its_first_answer_and_changes_nothing() {
        let mut s = MetaState::default();
        s.apply(
            META,
            MetaCommand::Bootstrap {
                default_user: "guest".into(),
                password_hash: crate::metadata::hash_password("guest", [1, 2, 3, 4]),
            },
        );
        let declare = MetaCommand::DeclareQueue {
            vhost: "/".into(),
            name: "q".into(),
            durable: true,
            exclusive_owner: None,
            auto_delete: false,
            arguments: Default::default(),
            node: 1,
        };
        let (first, effects) = s.apply(META, request(1, declare.clone()));
        assert!(
            matches!(first, MetaReply::QueueDeclared { created: true, .. }),
            "{first:?}"
        );
        assert!(!effects.is_empty());
        let add_user = MetaCommand::AddUser {
            name: "ys".into(),
            password_hash: crate::metadata::hash_password("ys1234", [5, 6, 7, 8]),
            tags: Vec::new(),
        };
        assert_eq!(s.apply(META, request(2, add_user.clone())).0, MetaReply::Ok);
        let before = s.clone();
        // The retry of a commit whose answer was lost: the first answer, not "already
        // exists", and nothing applied again.
        assert_eq!(
            s.apply(META, request(2, add_user.clone())),
            (MetaReply::Ok, Vec::new())
        );
        // The declare's retry does not declare the queue again.
        assert_eq!(s.apply(META, request(1, declare)), (first, Vec::new()));
        assert_eq!(s, before);
        // A new request is a new command: the user exists now.
        assert!(matches!(
            s.apply(META, request(3, add_user)).0,
            MetaReply::Error(e) if e.code == crate::amqp::ReplyCode::PreconditionFailed
        ));
    }

    #[test]
    fn answers_are_kept_for_the_last_requests_only() {
        let mut recent = RecentRequests::default();
        for id in 0..(REMEMBERED as u128 + 10) {
            recent.record(
                id,
                MetaReply::ExchangeDeclared {
                    created: id % 2 == 0,
                },
            );
        }
        assert_eq!(recent.len(), REMEMBERED);
        assert_eq!(recent.answer(5), None, "forgotten");
        assert_eq!(
            recent.answer(REMEMBERED as u128 + 9),
            Some(&MetaReply::ExchangeDeclared { created: false })
        );
        assert_eq!(
            recent.answer(10),
            Some(&MetaReply::ExchangeDeclared { created: true })
        );
    }
}
