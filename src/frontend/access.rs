//! Resource permissions on the AMQP side, as `rabbit_access_control` checks them: the
//! user's configure / write / read regexes in the connection's vhost, matched (not
//! anchored) against a queue or exchange name; an empty regex allows nothing. They are
//! compiled once per change of the metadata's access epoch and kept on the connection,
//! so a changed permission applies from the next operation, as in RabbitMQ 3.10.

use regex::Regex;

use super::error::{AmqpError, AmqpResult};
use crate::amqp::ReplyCode;
use crate::metadata::Permissions;

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

/// A connection's compiled permissions, valid for one access epoch.
#[derive(Debug, Default)]
pub(super) struct AccessCache {
    epoch: Option<u64>,
    compiled: Option<[Matcher; 3]>,
}

impl AccessCache {
    /// Check `perm` on `resource`; `epoch` is the metadata's current access epoch and
    /// `grant` reads the user's permissions in the vhost (only when the epoch moved).
    pub(super) fn check(
        &mut self,
        epoch: u64,
        grant: impl FnOnce() -> Option<Permissions>,
        user: &str,
        vhost: &str,
        perm: Perm,
        resource: Resource<'_>,
    ) -> AmqpResult<()> {
        if self.epoch != Some(epoch) {
            self.compiled = grant().map(|p| {
                [
                    Matcher::new(&p.configure),
                    Matcher::new(&p.write),
                    Matcher::new(&p.read),
                ]
            });
            self.epoch = Some(epoch);
        }
        let (kind, name) = match resource {
            Resource::Queue(q) => ("queue", q),
            Resource::Exchange("") => ("exchange", "amq.default"),
            Resource::Exchange(x) => ("exchange", x),
        };
        let allowed = self.compiled.as_ref().is_some_and(|m| {
            m[match perm {
                Perm::Configure => 0,
                Perm::Write => 1,
                Perm::Read => 2,
            }]
            .allows(name)
        });
        if allowed {
            return Ok(());
        }
        Err(AmqpError::new(
            ReplyCode::AccessRefused,
            format!("access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'"),
        ))
    }
}

impl super::connection::Connection {
    /// Check that this connection's user has `perm` on `resource` in its vhost.
    pub(super) fn allow(&mut self, perm: Perm, resource: Resource<'_>) -> AmqpResult<()> {
        let broker = &self.broker;
        let (user, vhost) = (&self.session.user, &self.session.vhost);
        self.access.check(
            broker.access_epoch(),
            || broker.permissions(user, vhost),
            user,
            vhost,
            perm,
            resource,
        )
    }

    /// A binding needs write on its destination, then read on its source exchange; in
    /// between RabbitMQ refuses the default exchange (later here, with its own text).
    pub(super) fn allow_binding(
        &mut self,
        destination: Resource<'_>,
        source: &str,
    ) -> AmqpResult<()> {
        self.allow(Perm::Write, destination)?;
        if source.is_empty() {
            return Ok(());
        }
        self.allow(Perm::Read, Resource::Exchange(source))
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

    fn grant(c: &str, w: &str, r: &str) -> Option<Permissions> {
        Some(Permissions {
            configure: c.into(),
            write: w.into(),
            read: r.into(),
        })
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
        assert!(cache.check(2, || None, "u", "/", Perm::Read, q).is_err());
    }
}
