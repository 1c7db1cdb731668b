//! Who may do what, as RabbitMQ's `rabbit_mgmt_util:is_authorized*`: HTTP basic
//! credentials checked against the replicated users, loopback-only users refused from
//! elsewhere, a user with none of the management tags refused, then each endpoint's
//! requirement (any management user, `monitoring`, `policymaker`, `administrator`, or
//! access to the vhost in the path). The decisions are pure; only [`authenticate`] asks
//! the node.

use std::net::IpAddr;

use base64::Engine;

use super::api::Api;
use super::reply::Reply;

/// The signed-in user: tags and its permissions, per vhost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct User {
    pub name: String,
    pub tags: Vec<String>,
    pub permissions: Vec<Permission>,
}

/// A user's configure / write / read regular expressions in one vhost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Permission {
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// Which of a permission's expressions an operation needs, as AMQP's checks use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Perm {
    Configure,
    Write,
    Read,
}

fn has(tags: &[String], wanted: &[&str]) -> bool {
    tags.iter().any(|t| wanted.contains(&t.as_str()))
}

impl User {
    pub fn is_admin(&self) -> bool {
        has(&self.tags, &["administrator"])
    }

    pub fn is_monitor(&self) -> bool {
        has(&self.tags, &["administrator", "monitoring"])
    }

    pub fn is_policymaker(&self) -> bool {
        has(&self.tags, &["administrator", "policymaker"])
    }

    pub fn is_management(&self) -> bool {
        has(
            &self.tags,
            &["administrator", "monitoring", "policymaker", "management"],
        )
    }

    /// A vhost it may log in to (has permissions in).
    pub fn may_use(&self, vhost: &str) -> bool {
        self.permissions.iter().any(|p| p.vhost == vhost)
    }

    /// Whether it may act on the resource `name` in `vhost`, as RabbitMQ checks an AMQP
    /// operation (the management API acts as the user, so its permissions apply to
    /// administrators too): the expression matched anywhere in the name, an empty one
    /// matching nothing.
    pub fn permits(&self, vhost: &str, perm: Perm, name: &str) -> bool {
        let Some(p) = self.permissions.iter().find(|p| p.vhost == vhost) else {
            return false;
        };
        let pattern = match perm {
            Perm::Configure => &p.configure,
            Perm::Write => &p.write,
            Perm::Read => &p.read,
        };
        !pattern.is_empty() && regex::Regex::new(pattern).is_ok_and(|re| re.is_match(name))
    }

    /// A vhost whose objects it sees in lists: all for monitors and administrators.
    pub fn sees(&self, vhost: &str) -> bool {
        self.is_monitor() || self.may_use(vhost)
    }
}

/// What an endpoint requires of its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Need<'a> {
    /// Any management user.
    Any,
    Monitor,
    Admin,
    /// Administrator, or permissions in the path's vhost (when it exists).
    Vhost(&'a str),
    /// Administrator, or a policymaker with permissions in the path's vhost.
    Policies(Option<&'a str>),
}

/// Whether `user` meets `need`; `vhost_exists` says whether a path's vhost exists (a
/// missing one is let through, to be answered 404).
pub(super) fn check(user: &User, need: Need<'_>, vhost_exists: bool) -> Result<(), Reply> {
    let (ok, refusal) = match need {
        Need::Any => (true, ""),
        Need::Monitor => (user.is_monitor(), "Not monitor user"),
        Need::Admin => (user.is_admin(), "Not administrator user"),
        Need::Vhost(v) => (
            user.is_admin() || !vhost_exists || user.may_use(v),
            "User not authorised to access virtual host",
        ),
        Need::Policies(v) => (
            user.is_admin()
                || (user.is_policymaker() && v.is_none_or(|v| !vhost_exists || user.may_use(v))),
            "User not authorised to access object",
        ),
    };
    match ok {
        true => Ok(()),
        false => Err(Reply::not_authorised(refusal)),
    }
}

/// The user and password of an `Authorization: Basic` header.
pub(super) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A loopback-only user (RabbitMQ's `loopback_users`, `guest` by default) from another
/// address is refused with RabbitMQ's 401.
pub(super) fn loopback_check(loopback_only: bool, peer: IpAddr) -> Result<(), Reply> {
    // An IPv4 peer on a dual-stack socket arrives as ::ffff:127.0.0.1.
    let loopback = match peer {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    };
    match loopback_only && !loopback {
        true => Err(Reply::not_authorised("User can only log in via localhost")),
        false => Ok(()),
    }
}

/// The request's user, or RabbitMQ's 401: no credentials (an empty body and the realm),
/// wrong ones ("Login failed"), a loopback-only user from elsewhere, a user without a
/// management tag.
pub(super) async fn authenticate(
    api: &Api,
    header: Option<&str>,
    peer: IpAddr,
) -> Result<User, Reply> {
    let Some((name, password)) = header.and_then(basic_credentials) else {
        return Err(Reply::not_authenticated(None));
    };
    if !api.password_ok(&name, &password).await? {
        return Err(Reply::not_authenticated(Some("Login failed")));
    }
    loopback_check(api.loopback_only(&name), peer)?;
    let user = api.user(&name).await?;
    if !user.is_management() {
        return Err(Reply::not_authorised("Not management user"));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tags: &[&str], vhosts: &[&str]) -> User {
        User {
            name: "u".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            permissions: vhosts
                .iter()
                .map(|v| Permission {
                    vhost: v.to_string(),
                    configure: ".*".into(),
                    write: "^w".into(),
                    read: "".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn operations_need_the_user_s_permission_regexes() {
        let u = user(&["administrator"], &["/"]);
        assert!(u.permits("/", Perm::Configure, "anything"));
        assert!(u.permits("/", Perm::Write, "wq"));
        assert!(!u.permits("/", Perm::Write, "q"));
        // An empty expression permits nothing; no permissions in a vhost, nothing there.
        assert!(!u.permits("/", Perm::Read, "wq"));
        assert!(!u.permits("other", Perm::Configure, "x"));
    }

    fn refusal(r: Result<(), Reply>) -> String {
        r.unwrap_err().body.unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn tags_gate_as_rabbitmq_s() {
        let admin = user(&["administrator"], &[]);
        let monitor = user(&["monitoring"], &[]);
        let manager = user(&["management"], &["/"]);
        let policymaker = user(&["policymaker"], &["v"]);
        let nobody = user(&["impersonator"], &["/"]);
        assert!(!nobody.is_management());
        assert!(admin.is_management() && monitor.is_management());
        assert!(check(&admin, Need::Admin, true).is_ok());
        assert_eq!(
            refusal(check(&monitor, Need::Admin, true)),
            "Not administrator user"
        );
        assert!(check(&monitor, Need::Monitor, true).is_ok());
        assert_eq!(
            refusal(check(&manager, Need::Monitor, true)),
            "Not monitor user"
        );
        assert!(check(&manager, Need::Vhost("/"), true).is_ok());
        assert_eq!(
            refusal(check(&manager, Need::Vhost("other"), true)),
            "User not authorised to access virtual host"
        );
        // A vhost that does not exist is let through, to be answered 404.
        assert!(check(&manager, Need::Vhost("other"), false).is_ok());
        // Monitors see every vhost in lists but may only act in their own.
        assert!(monitor.sees("any"));
        assert!(!manager.sees("other"));
        assert!(check(&monitor, Need::Vhost("any"), true).is_err());
        assert!(check(&policymaker, Need::Policies(Some("v")), true).is_ok());
        assert!(check(&policymaker, Need::Policies(None), true).is_ok());
        assert_eq!(
            refusal(check(&manager, Need::Policies(Some("/")), true)),
            "User not authorised to access object"
        );
        assert!(check(&admin, Need::Policies(Some("x")), true).is_ok());
    }

    #[test]
    fn loopback_users_only_from_loopback() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(loopback_check(true, local).is_ok());
        assert!(loopback_check(true, mapped).is_ok());
        assert!(loopback_check(true, "::1".parse().unwrap()).is_ok());
        assert_eq!(
            refusal(loopback_check(true, remote)),
            "User can only log in via localhost"
        );
        assert!(loopback_check(false, remote).is_ok());
    }

    #[test]
    fn basic_credentials_are_decoded() {
        // "guest:gu:est" -- a password may hold a colon.
        assert_eq!(
            basic_credentials("Basic Z3Vlc3Q6Z3U6ZXN0"),
            Some(("guest".into(), "gu:est".into()))
        );
        assert_eq!(
            basic_credentials("basic Z3Vlc3Q6Z3Vlc3Q="),
            Some(("guest".into(), "guest".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic Z3Vlc3Q="), None);
    }
}
