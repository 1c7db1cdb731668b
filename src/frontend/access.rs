//! Resource permissions on the AMQP side, as `rabbit_access_control` checks them: the
//! user's configure / write / read regexes in the connection's vhost, matched (not
//! anchored) against a queue or exchange name; an empty regex allows nothing. They are
//! compiled once per change of the metadata's access epoch and kept on the connection,
//! so a changed permission applies from the next operation, as in RabbitMQ 3.10.
//!
//! Topic permissions (write on publish, read on binding, over the routing key) are
//! checked only on topic exchanges for which the user has one; a connection whose user
//! has none in its vhost never looks. An empty topic regex matches only the empty key,
//! as RabbitMQ reads it as `^$`.

use std::collections::HashMap;

use regex::Regex;

use super::error::{AmqpError, AmqpResult};
use crate::amqp::ReplyCode;
use crate::broker::Broker;
use crate::metadata::{expand_topic_pattern, ExchangeKind, Permissions, TopicPermission};

/// Which of the three permissions an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Perm {
    Configure,
    Write,
    Read,
}

/// What an operation touches.
#[derive(Clone, Copy, Debug)]
pub(super) enum Resource<'a> {
    Queue(&'a str),
    /// The default exchange is `""`, checked as `amq.default`.
    Exchange(&'a str),
}

/// One compiled permission.
#[derive(Debug)]
enum Matcher {
    /// `.*`: everything, without running a regex on the hot path.
    All,
    /// An empty permission, a missing grant, or a regex that does not compile.
    Nothing,
    Pattern(Regex),
}

impl Matcher {
    fn new(pattern: &str) -> Matcher {
        match pattern {
            "" => Matcher::Nothing,
            ".*" => Matcher::All,
            p => Regex::new(p).map_or(Matcher::Nothing, Matcher::Pattern),
        }
    }

    fn allows(&self, name: &str) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Nothing => false,
            Matcher::Pattern(re) => re.is_match(name),
        }
    }
}

/// What a user was granted in a vhost: permissions and topic permissions by exchange.
#[derive(Debug, Default)]
pub(super) struct Grants {
    pub permissions: Option<Permissions>,
    pub topics: Vec<(String, TopicPermission)>,
}

/// A connection's compiled permissions, valid for one access epoch.
#[derive(Debug, Default)]
pub(super) struct AccessCache {
    epoch: Option<u64>,
    compiled: Option<[Matcher; 3]>,
    /// Exchange -> compiled (write, read) topic regexes.
    topics: HashMap<String, [Matcher; 2]>,
    /// The exchange write was last allowed on (publishes go to the same exchange over
    /// and over: a string compare instead of a regex per message).
    last_write: Option<String>,
}

/// A topic regex: empty matches only the empty routing key.
fn topic_matcher(pattern: &str, user: &str, vhost: &str) -> Matcher {
    match pattern {
        "" => Matcher::new("^$"),
        p => Matcher::new(&expand_topic_pattern(p, user, vhost)),
    }
}

impl AccessCache {
    /// Check `perm` on `resource`; `epoch` is the metadata's current access epoch and
    /// `grant` reads the user's permissions in the vhost (only when the epoch moved).
    pub(super) fn check(
        &mut self,
        epoch: u64,
        grant: impl FnOnce() -> Grants,
        user: &str,
        vhost: &str,
        perm: Perm,
        resource: Resource<'_>,
    ) -> AmqpResult<()> {
        self.refresh(epoch, grant, user, vhost);
        let (kind, name) = match resource {
            Resource::Queue(q) => ("queue", q),
            Resource::Exchange("") => ("exchange", "amq.default"),
            Resource::Exchange(x) => ("exchange", x),
        };
        let exchange_write = kind == "exchange" && perm == Perm::Write;
        if exchange_write && self.last_write.as_deref() == Some(name) {
            return Ok(());
        }
        let allowed = self.compiled.as_ref().is_some_and(|m| {
            m[match perm {
                Perm::Configure => 0,
                Perm::Write => 1,
                Perm::Read => 2,
            }]
            .allows(name)
        });
        if allowed {
            if exchange_write {
                self.last_write = Some(name.to_owned());
            }
            return Ok(());
        }
        Err(AmqpError::new(
            ReplyCode::AccessRefused,
            format!("access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'"),
        ))
    }
}

impl AccessCache {
    /// Compile the user's grants again when the access epoch moved.
    fn refresh(&mut self, epoch: u64, grant: impl FnOnce() -> Grants, user: &str, vhost: &str) {
        if self.epoch == Some(epoch) {
            return;
        }
        let grants = grant();
        self.compiled = grants.permissions.map(|p| {
            [
                Matcher::new(&p.configure),
                Matcher::new(&p.write),
                Matcher::new(&p.read),
            ]
        });
        self.topics = grants
            .topics
            .into_iter()
            .map(|(x, t)| {
                let write = topic_matcher(&t.write, user, vhost);
                (x, [write, topic_matcher(&t.read, user, vhost)])
            })
            .collect();
        self.last_write = None;
        self.epoch = Some(epoch);
    }

    /// Check a topic permission (`perm` is Write or Read) on `routing_key`; `kind`
    /// reads the exchange's type (only when the user has a topic permission on it).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_topic(
        &mut self,
        epoch: u64,
        grant: impl FnOnce() -> Grants,
        kind: impl FnOnce() -> Option<ExchangeKind>,
        user: &str,
        vhost: &str,
        perm: Perm,
        exchange: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        self.refresh(epoch, grant, user, vhost);
        let Some(matchers) = self.topics.get(exchange) else {
            return Ok(());
        };
        if kind() != Some(ExchangeKind::Topic) {
            return Ok(());
        }
        let matcher = &matchers[usize::from(perm == Perm::Read)];
        if matcher.allows(routing_key) {
            return Ok(());
        }
        Err(AmqpError::new(
            ReplyCode::AccessRefused,
            format!("access to topic '{routing_key}' in exchange '{exchange}' in vhost '{vhost}' refused for user '{user}'"),
        ))
    }
}

/// What `user` was granted in `vhost`, from the local metadata.
fn grants(broker: &Broker, user: &str, vhost: &str) -> Grants {
    let meta = broker.read_meta();
    Grants {
        permissions: meta.permissions(user, vhost).cloned(),
        topics: meta
            .all_topic_permissions()
            .filter(|(u, v, _, _)| *u == user && *v == vhost)
            .map(|(_, _, x, t)| (x.to_owned(), t.clone()))
            .collect(),
    }
}

impl super::connection::Connection {
    /// Check that this connection's user has `perm` on `resource` in its vhost.
    pub(super) fn allow(&mut self, perm: Perm, resource: Resource<'_>) -> AmqpResult<()> {
        let broker = &self.broker;
        let (user, vhost) = (&self.session.user, &self.session.vhost);
        self.access.check(
            broker.access_epoch(),
            || grants(broker, user, vhost),
            user,
            vhost,
            perm,
            resource,
        )
    }

    /// Check this connection's topic permission `perm` on `routing_key` of `exchange`.
    pub(super) fn allow_topic(
        &mut self,
        perm: Perm,
        exchange: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        let broker = &self.broker;
        let (user, vhost) = (&self.session.user, &self.session.vhost);
        self.access.check_topic(
            broker.access_epoch(),
            || grants(broker, user, vhost),
            || broker.read_meta().exchange(vhost, exchange).map(|x| x.kind),
            user,
            vhost,
            perm,
            exchange,
            routing_key,
        )
    }

    /// A binding needs write on its destination, then read on its source exchange (in
    /// between RabbitMQ refuses the default exchange: later here, with its own text),
    /// then read on its key when the source is a topic exchange.
    pub(super) fn allow_binding(
        &mut self,
        destination: Resource<'_>,
        source: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        self.allow(Perm::Write, destination)?;
        if source.is_empty() {
            return Ok(());
        }
        self.allow(Perm::Read, Resource::Exchange(source))?;
        self.allow_topic(Perm::Read, source, routing_key)
    }

    /// The user or the vhost of this connection is gone: RabbitMQ's reason, if so.
    pub(super) fn login_revoked(&self) -> Option<AmqpError> {
        let (user, vhost) = (&self.session.user, &self.session.vhost);
        match self.broker.login_holds(user, vhost) {
            (false, _) => Some(AmqpError::new(
                ReplyCode::ConnectionForced,
                format!("user '{user}' is deleted"),
            )),
            (_, false) => Some(AmqpError::new(
                ReplyCode::ConnectionForced,
                format!("vhost '{vhost}' is deleted"),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(c: &str, w: &str, r: &str) -> Grants {
        Grants {
            permissions: Some(Permissions {
                configure: c.into(),
                write: w.into(),
                read: r.into(),
            }),
            topics: Vec::new(),
        }
    }

    #[test]
    fn regexes_match_anywhere_and_empty_allows_nothing() {
        let mut cache = AccessCache::default();
        let mut check = |perm, res| {
            cache
                .check(1, || grant("^n-c", "", "r"), "u", "/", perm, res)
                .is_ok()
        };
        assert!(check(Perm::Configure, Resource::Queue("n-c1")));
        assert!(!check(Perm::Configure, Resource::Queue("x-n-c1")));
        assert!(check(Perm::Read, Resource::Queue("order")), "unanchored");
        assert!(!check(Perm::Write, Resource::Exchange("anything")));
    }

    #[test]
    fn refusals_carry_rabbitmq_s_text_and_the_default_exchange_s_name() {
        let mut cache = AccessCache::default();
        let e = cache
            .check(
                1,
                || grant("", "", ""),
                "bob",
                "/",
                Perm::Write,
                Resource::Exchange(""),
            )
            .unwrap_err();
        assert_eq!(e.code, ReplyCode::AccessRefused);
        assert_eq!(
            e.text,
            "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'bob'"
        );
    }

    #[test]
    fn the_remembered_exchange_write_ends_with_the_epoch_and_covers_only_its_exchange() {
        let mut cache = AccessCache::default();
        let x = Resource::Exchange("x");
        let write = |c: &mut AccessCache, epoch, w: &'static str, res| {
            c.check(epoch, || grant("", w, ""), "u", "/", Perm::Write, res)
                .is_ok()
        };
        assert!(write(&mut cache, 1, "^x$", x));
        assert!(write(&mut cache, 1, "^x$", x), "remembered");
        assert!(!write(&mut cache, 1, "^x$", Resource::Exchange("y")));
        assert!(!write(&mut cache, 2, "^y$", x), "a new epoch forgets it");
        // Write on a queue of the same name is another permission check.
        assert!(write(&mut cache, 3, "^x$", x));
        assert!(cache
            .check(3, || unreachable!(), "u", "/", Perm::Read, x)
            .is_err());
    }

    #[test]
    fn permissions_are_read_again_only_when_the_epoch_moves() {
        let mut cache = AccessCache::default();
        let q = Resource::Queue("q");
        assert!(cache
            .check(1, || grant(".*", ".*", ".*"), "u", "/", Perm::Read, q)
            .is_ok());
        // Same epoch: the grant is not read again.
        assert!(cache
            .check(1, || panic!("not read"), "u", "/", Perm::Read, q)
            .is_ok());
        // A new epoch with the grant gone: refused from this operation on.
        assert!(cache
            .check(2, Grants::default, "u", "/", Perm::Read, q)
            .is_err());
    }

    #[test]
    fn topic_permissions_apply_to_topic_exchanges_with_variables_expanded() {
        let mut cache = AccessCache::default();
        let grants = || {
            let mut g = grant(".*", ".*", ".*");
            let t = |w: &str, r: &str| TopicPermission {
                write: w.into(),
                read: r.into(),
            };
            g.topics.push(("amq.topic".into(), t("^{username}\\.", "")));
            g.topics.push(("direct".into(), t("^none$", "^none$")));
            g
        };
        let mut check = |kind: ExchangeKind, x: &str, perm: Perm, key: &str| {
            cache.check_topic(1, grants, || Some(kind), "bob", "/", perm, x, key)
        };
        assert!(check(ExchangeKind::Topic, "amq.topic", Perm::Write, "bob.x").is_ok());
        let e = check(ExchangeKind::Topic, "amq.topic", Perm::Write, "al.x").unwrap_err();
        assert_eq!(
            e.text,
            "ACCESS_REFUSED - access to topic 'al.x' in exchange 'amq.topic' in vhost '/' refused for user 'bob'"
        );
        // An empty regex matches only the empty key.
        assert!(check(ExchangeKind::Topic, "amq.topic", Perm::Read, "").is_ok());
        assert!(check(ExchangeKind::Topic, "amq.topic", Perm::Read, "a").is_err());
        // Not a topic exchange, or no topic permission on it: not checked.
        assert!(check(ExchangeKind::Direct, "direct", Perm::Write, "x").is_ok());
        assert!(check(ExchangeKind::Topic, "other", Perm::Write, "x").is_ok());
    }
}
