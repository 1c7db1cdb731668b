//! Policies, as `rabbitmqctl set_policy` makes them: a vhost's named rule that gives the
//! queues (or exchanges) whose names match its pattern the keys of its definition. Of
//! several matching policies the one of highest priority applies (ties: the greatest
//! name, so every node picks the same). Keys that take effect: `queue-leader-locator`
//! (`client-local` or `balanced`), which places a new quorum queue's leader when the
//! queue has no `x-queue-leader-locator` argument, and `ha-mode` / `ha-params` (with
//! `ha-sync-mode` accepted), which mirror durable classic queues on Raft
//! (`mirroring.rs`), and `alternate-exchange` on exchanges (an exchange's own argument
//! wins over it, as in RabbitMQ). Keys of features WarrenMQ does not have yet are refused by name,
//! unknown keys as RabbitMQ refuses them.

use serde::{Deserialize, Serialize};

use super::mirroring::{self, HaMode};
use super::placement::LeaderLocator;

/// Policy keys that take effect (`queue-mode` is accepted without effect, as the
/// `x-queue-mode` argument is).
const SUPPORTED_KEYS: &[&str] = &[
    "alternate-exchange",
    "queue-leader-locator",
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "queue-mode",
];

/// RabbitMQ 3.10's other policy keys: refused until their feature works.
const UNSUPPORTED_KEYS: &[&str] = &[
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "dead-letter-strategy",
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
    "overflow",
    "queue-version",
    "queue-master-locator",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "max-age",
    "stream-max-segment-size-bytes",
    "federation-upstream",
    "federation-upstream-set",
];
use super::state::QueueType;

/// What a policy applies to (`--apply-to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyTarget {
    All,
    Queues,
    ClassicQueues,
    QuorumQueues,
    Streams,
    Exchanges,
}

impl PolicyTarget {
    /// rabbitmqctl's names.
    pub fn parse(value: &str) -> Option<PolicyTarget> {
        Some(match value {
            "all" => PolicyTarget::All,
            "queues" => PolicyTarget::Queues,
            "classic_queues" => PolicyTarget::ClassicQueues,
            "quorum_queues" => PolicyTarget::QuorumQueues,
            "streams" => PolicyTarget::Streams,
            "exchanges" => PolicyTarget::Exchanges,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyTarget::All => "all",
            PolicyTarget::Queues => "queues",
            PolicyTarget::ClassicQueues => "classic_queues",
            PolicyTarget::QuorumQueues => "quorum_queues",
            PolicyTarget::Streams => "streams",
            PolicyTarget::Exchanges => "exchanges",
        }
    }

    fn covers_queue(self, queue_type: QueueType) -> bool {
        match self {
            PolicyTarget::All | PolicyTarget::Queues => true,
            PolicyTarget::ClassicQueues => queue_type == QueueType::Classic,
            PolicyTarget::QuorumQueues => queue_type == QueueType::Quorum,
            PolicyTarget::Streams => queue_type == QueueType::Stream,
            PolicyTarget::Exchanges => false,
        }
    }

    fn covers_exchanges(self) -> bool {
        matches!(self, PolicyTarget::All | PolicyTarget::Exchanges)
    }
}

/// One policy of a vhost (its name is the key it is stored under).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// A regular expression over queue (or exchange) names.
    pub pattern: String,
    pub apply_to: PolicyTarget,
    pub priority: i64,
    /// The definition: a JSON object, as given (checked by [`Policy::validate`]).
    pub definition: String,
}

impl Policy {
    /// Why `pattern` and `definition` cannot make a policy (RabbitMQ's checks for what
    /// WarrenMQ knows: the pattern compiles, the definition is a non-empty JSON object,
    /// a `queue-leader-locator` names a locator).
    pub fn validate(pattern: &str, definition: &str) -> Result<(), String> {
        regex::Regex::new(pattern)
            .map_err(|e| format!("'{pattern}' is not a valid regular expression: {e}"))?;
        let value: serde_json::Value = serde_json::from_str(definition)
            .map_err(|e| format!("the definition is not valid JSON: {e}"))?;
        let object = value
            .as_object()
            .ok_or("the definition must be a JSON object")?;
        if object.is_empty() {
            return Err("the definition must not be empty".into());
        }
        if let Some(key) = object
            .keys()
            .find(|k| UNSUPPORTED_KEYS.contains(&k.as_str()))
        {
            return Err(format!(
                "policy key '{key}' is not supported by WarrenMQ yet (refused rather than ignored)"
            ));
        }
        let unknown: Vec<&str> = object
            .keys()
            .map(String::as_str)
            .filter(|k| !SUPPORTED_KEYS.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(format!("{unknown:?} are not recognised policy settings"));
        }
        mirroring::parse(object)?;
        if let Some(ae) = object.get("alternate-exchange") {
            if !ae.is_string() {
                return Err(format!("{ae} is not a valid alternate exchange name"));
            }
        }
        if let Some(locator) = object.get("queue-leader-locator") {
            let known = locator.as_str().and_then(LeaderLocator::parse).is_some();
            if !known {
                return Err(format!(
                    "{locator} is not a valid queue-leader-locator (client-local or balanced)"
                ));
            }
        }
        Ok(())
    }

    /// The definition's mirroring (`ha-mode`), if it has one.
    pub fn ha_mode(&self) -> Option<HaMode> {
        let value: serde_json::Value = serde_json::from_str(&self.definition).ok()?;
        mirroring::parse(value.as_object()?).ok().flatten()
    }

    /// The definition's `alternate-exchange`, if it has one.
    pub fn alternate_exchange(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.definition).ok()?;
        Some(value.get("alternate-exchange")?.as_str()?.to_owned())
    }

    /// The definition's `queue-leader-locator`, if it has one.
    pub fn leader_locator(&self) -> Option<LeaderLocator> {
        let value: serde_json::Value = serde_json::from_str(&self.definition).ok()?;
        LeaderLocator::parse(value.get("queue-leader-locator")?.as_str()?)
    }
}

/// The policy that applies to queue `name` among `(name, policy)` pairs of its vhost.
pub fn effective<'a>(
    policies: impl Iterator<Item = (&'a str, &'a Policy)>,
    name: &str,
    queue_type: QueueType,
) -> Option<&'a Policy> {
    PolicySet::new(policies)
        .effective(name, queue_type)
        .map(|(_, p)| p)
}

/// A vhost's policies with their patterns compiled once, so that a pass over many
/// queues (a mirroring round, `list_queues`) compiles each pattern once, not per queue.
pub struct PolicySet<'a> {
    /// (name, policy, compiled pattern; `None` when it does not compile: never matches).
    policies: Vec<(&'a str, &'a Policy, Option<regex::Regex>)>,
}

impl<'a> PolicySet<'a> {
    pub fn new(policies: impl Iterator<Item = (&'a str, &'a Policy)>) -> Self {
        PolicySet {
            policies: policies
                .map(|(name, p)| (name, p, regex::Regex::new(&p.pattern).ok()))
                .collect(),
        }
    }

    /// The policy that applies to queue `name` of type `queue_type`, with its name.
    pub fn effective(&self, name: &str, queue_type: QueueType) -> Option<(&'a str, &'a Policy)> {
        self.choose(name, |t| t.covers_queue(queue_type))
    }

    /// The policy that applies to exchange `name`, with its name.
    pub fn effective_exchange(&self, name: &str) -> Option<(&'a str, &'a Policy)> {
        self.choose(name, PolicyTarget::covers_exchanges)
    }

    fn choose(
        &self,
        name: &str,
        covers: impl Fn(PolicyTarget) -> bool,
    ) -> Option<(&'a str, &'a Policy)> {
        self.policies
            .iter()
            .filter(|(_, p, re)| {
                covers(p.apply_to) && re.as_ref().is_some_and(|re| re.is_match(name))
            })
            .max_by_key(|(policy_name, p, _)| (p.priority, *policy_name))
            .map(|(name, p, _)| (*name, *p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pattern: &str, apply_to: PolicyTarget, priority: i64, def: &str) -> Policy {
        Policy {
            pattern: pattern.into(),
            apply_to,
            priority,
            definition: def.into(),
        }
    }

    #[test]
    fn validation_refuses_what_rabbitmq_refuses() {
        let ok = r#"{"queue-leader-locator":"balanced"}"#;
        assert!(Policy::validate("^bal\\.", ok).is_ok());
        assert!(Policy::validate("(", ok)
            .unwrap_err()
            .contains("regular expression"));
        assert!(Policy::validate(".*", "notjson")
            .unwrap_err()
            .contains("JSON"));
        assert!(Policy::validate(".*", "[1]")
            .unwrap_err()
            .contains("object"));
        assert!(Policy::validate(".*", "{}").unwrap_err().contains("empty"));
        let bad = r#"{"queue-leader-locator":"nowhere"}"#;
        assert!(Policy::validate(".*", bad).unwrap_err().contains("locator"));
        // Keys of features WarrenMQ lacks, by name; unknown keys as RabbitMQ refuses them.
        assert!(Policy::validate(".*", r#"{"max-length":10}"#)
            .unwrap_err()
            .contains("'max-length' is not supported"));
        assert!(Policy::validate(".*", r#"{"bogus":1}"#)
            .unwrap_err()
            .contains("not recognised policy settings"));
        assert!(Policy::validate(".*", r#"{"ha-mode":"all","queue-mode":"lazy"}"#).is_ok());
        assert!(Policy::validate(".*", r#"{"alternate-exchange":"ae"}"#).is_ok());
        assert_eq!(
            Policy::validate(".*", r#"{"alternate-exchange":5}"#).unwrap_err(),
            "5 is not a valid alternate exchange name"
        );
    }

    #[test]
    fn the_matching_policy_of_highest_priority_applies() {
        let bal = r#"{"queue-leader-locator":"balanced"}"#;
        let local = r#"{"queue-leader-locator":"client-local"}"#;
        let a = policy("^q\\.", PolicyTarget::Queues, 1, bal);
        let b = policy("^q\\.x", PolicyTarget::QuorumQueues, 5, local);
        let c = policy(".*", PolicyTarget::Exchanges, 9, bal);
        let all = [("a", &a), ("b", &b), ("c", &c)];
        let pick = |name, t| effective(all.iter().copied(), name, t).cloned();
        assert_eq!(pick("q.y", QueueType::Quorum), Some(a.clone()));
        assert_eq!(pick("q.x1", QueueType::Quorum), Some(b.clone()));
        assert_eq!(pick("q.x1", QueueType::Classic), Some(a.clone()));
        assert_eq!(pick("other", QueueType::Quorum), None);
        assert_eq!(b.leader_locator(), Some(LeaderLocator::ClientLocal));
        assert_eq!(a.leader_locator(), Some(LeaderLocator::Balanced));
        let d = policy(".*", PolicyTarget::All, 1, bal);
        let tie = [("a", &a), ("d", &d)];
        let chosen = effective(tie.iter().copied(), "q.z", QueueType::Quorum);
        assert_eq!(chosen, Some(&d), "equal priority: the greatest name");
    }

    #[test]
    fn an_alternate_exchange_policy_takes_effect_on_existing_and_new_exchanges() {
        use crate::metadata::{ApplyMeta, ExchangeKind, MetaCommand, MetaState};
        let meta = ApplyMeta {
            index: 1,
            time_ms: 0,
        };
        let mut s = MetaState::default();
        let boot = MetaCommand::Bootstrap {
            default_user: "guest".into(),
            password_hash: String::new(),
        };
        s.apply(meta, boot);
        let declare = |name: &str, ae: Option<&str>| {
            let mut arguments = amq_protocol::types::FieldTable::default();
            if let Some(ae) = ae {
                arguments.insert(
                    "alternate-exchange".into(),
                    amq_protocol::types::AMQPValue::LongString(ae.into()),
                );
            }
            MetaCommand::DeclareExchange {
                vhost: "/".into(),
                name: name.into(),
                kind: ExchangeKind::Direct,
                durable: true,
                auto_delete: false,
                internal: false,
                arguments,
            }
        };
        let bind = |source: &str| MetaCommand::Bind {
            vhost: "/".into(),
            source: source.into(),
            destination: crate::metadata::Destination::Queue(format!("{source}-q")),
            routing_key: "nowhere".into(),
            arguments: Default::default(),
        };
        for x in ["ae", "own-ae"] {
            s.apply(meta, declare(x, None));
            s.apply(
                meta,
                MetaCommand::DeclareQueue {
                    vhost: "/".into(),
                    name: format!("{x}-q"),
                    durable: false,
                    exclusive_owner: None,
                    auto_delete: false,
                    arguments: Default::default(),
                    node: 1,
                },
            );
            s.apply(meta, bind(x));
        }
        s.apply(meta, declare("x.before", None));
        s.apply(meta, declare("x.own", Some("own-ae")));
        let routed = |s: &MetaState, x: &str| {
            s.route("/", x, "nowhere", None)
                .queues
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert!(routed(&s, "x.before").is_empty());
        let ae_policy = |def: &str| MetaCommand::SetPolicy {
            vhost: "/".into(),
            name: "ae".into(),
            policy: policy("^x\\.", PolicyTarget::Exchanges, 0, def),
        };
        s.apply(meta, ae_policy(r#"{"alternate-exchange":"ae"}"#));
        s.apply(meta, declare("x.after", None));
        assert_eq!(routed(&s, "x.before"), ["ae-q"], "an existing exchange");
        assert_eq!(routed(&s, "x.after"), ["ae-q"], "a new exchange");
        assert_eq!(routed(&s, "x.own"), ["own-ae-q"], "the argument wins");
        let clear = MetaCommand::ClearPolicy {
            vhost: "/".into(),
            name: "ae".into(),
        };
        s.apply(meta, clear);
        assert!(routed(&s, "x.before").is_empty(), "cleared");
        assert_eq!(routed(&s, "x.own"), ["own-ae-q"]);
        // A queue-only policy does not touch exchanges.
        s.apply(
            meta,
            MetaCommand::SetPolicy {
                vhost: "/".into(),
                name: "q".into(),
                policy: policy(
                    ".*",
                    PolicyTarget::Queues,
                    0,
                    r#"{"alternate-exchange":"ae"}"#,
                ),
            },
        );
        assert!(routed(&s, "x.before").is_empty());
    }
}
