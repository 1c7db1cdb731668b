//! Which handler answers a path: the decoded segments matched against RabbitMQ 3.10's
//! `/api/*` routes. As RabbitMQ's dispatcher, a path no route matches is answered before
//! the user is authenticated (404, or a bare 400 when a segment holds an encoded `/`,
//! which RabbitMQ's router cannot place); a known path then needs valid credentials.

use std::net::IpAddr;

use axum::http::Method;
use bytes::Bytes;

use super::api::Api;
use super::auth::authenticate;
use super::bindings::{exchange_name, BindingPath};
use super::path::{query, segments};
use super::reply::{Answer, Reply};
use super::request::Request;
use super::{
    access, bindings, connections, definitions, exchanges, groups, health, limits,
    operator_policies, overview, policies, queues, replicas,
};

/// The parts of an HTTP request the API reads.
pub(super) struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    /// `X-Reason`: why a connection is closed (`DELETE /api/connections/NAME`).
    pub reason: Option<String>,
    pub peer: IpAddr,
    pub body: Bytes,
}

/// Answer one request.
pub(super) async fn answer(api: &Api, incoming: Incoming) -> Reply {
    match route(api, incoming).await {
        Ok(reply) | Err(reply) => reply,
    }
}

async fn route(api: &Api, incoming: Incoming) -> Answer {
    let Ok(segments) = segments(&incoming.path) else {
        return Err(Reply::not_found());
    };
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some((&"api", path)) = s.split_first() else {
        return Err(Reply::not_found());
    };
    if !known(path) {
        return Err(match path.iter().any(|p| p.contains('/')) {
            true => Reply::status(400),
            false => Reply::not_found(),
        });
    }
    let user = authenticate(api, incoming.authorization.as_deref(), incoming.peer).await?;
    let req = Request {
        method: incoming.method,
        query: query(incoming.query.as_deref()),
        body: incoming.body,
        reason: incoming.reason,
        user,
    };
    dispatch(api, &req, path).await
}

fn get_only(req: &Request) -> Result<(), Reply> {
    match req.is(Method::GET) {
        true => Ok(()),
        false => Err(Reply::method_not_allowed()),
    }
}

/// One list of routes makes both `known` (does a route match these segments?) and
/// `dispatch` (answer them), so the two cannot disagree.
macro_rules! routes {
    (fn $known:ident; async fn $dispatch:ident($api:ident, $req:ident, $path:ident);
     $($pattern:pat $(if $guard:expr)? => $answer:expr,)+) => {
        #[allow(unused_variables)]
        fn $known($path: &[&str]) -> bool {
            match *$path {
                $($pattern $(if $guard)? => true,)+
                _ => false,
            }
        }

        async fn $dispatch($api: &Api, $req: &Request, $path: &[&str]) -> Answer {
            match *$path {
                $($pattern $(if $guard)? => $answer,)+
                _ => Err(Reply::not_found()),
            }
        }
    };
}

routes! {
    fn known; async fn dispatch(api, req, path);
    ["overview"] => {
        get_only(req)?;
        overview::overview(api, req).await
    },
    ["whoami"] => overview::whoami(req).await,
    ["nodes"] => overview::nodes(api, req, None).await,
    ["nodes", name] => overview::nodes(api, req, Some(name)).await,
    ["cluster-name"] => overview::cluster_name(api, req).await,
    ["aliveness-test", vhost] => overview::aliveness(api, req, vhost).await,
    ["healthchecks", "node"] | ["healthchecks", "node", _] => overview::node_health(api).await,
    ["health", "checks", "alarms"] => overview::alarms(api, false).await,
    ["health", "checks", "local-alarms"] => overview::alarms(api, true).await,
    ["health", "checks", "node-is-quorum-critical"] => {
        get_only(req)?;
        health::node_critical(api, true).await
    },
    ["health", "checks", "node-is-mirror-sync-critical"] => {
        get_only(req)?;
        health::node_critical(api, false).await
    },
    ["health", "checks", "virtual-hosts"] => {
        get_only(req)?;
        health::virtual_hosts(api).await
    },
    ["health", "checks", "port-listener", port] => {
        get_only(req)?;
        health::port_listener(api, port).await
    },
    ["health", "checks", "protocol-listener", protocol] => {
        get_only(req)?;
        health::protocol_listener(api, protocol).await
    },
    ["health", "checks", "certificate-expiration", within, unit] => {
        get_only(req)?;
        health::certificate_expiration(within, unit).await
    },
    ["vhosts"] => {
        get_only(req)?;
        access::vhosts(api, req).await
    },
    ["vhosts", name] => access::vhost(api, req, name).await,
    ["users"] => access::users(api, req, false).await,
    ["users", "without-permissions"] => access::users(api, req, true).await,
    ["users", "bulk-delete"] => access::bulk_delete(api, req).await,
    ["users", name] => access::user(api, req, name).await,
    ["permissions"] => access::permissions(api, req, false).await,
    ["permissions", vhost, user] => access::permission(api, req, vhost, user, false).await,
    ["topic-permissions"] => access::permissions(api, req, true).await,
    ["topic-permissions", vhost, user] => access::permission(api, req, vhost, user, true).await,
    ["policies"] => policies::policies(api, req, None).await,
    ["policies", vhost] => policies::policies(api, req, Some(vhost)).await,
    ["policies", vhost, name] => policies::policy(api, req, vhost, name).await,
    ["operator-policies"] => operator_policies::operator_policies(api, req, None).await,
    ["operator-policies", vhost] => {
        operator_policies::operator_policies(api, req, Some(vhost)).await
    },
    ["operator-policies", vhost, name] => {
        operator_policies::operator_policy(api, req, vhost, name).await
    },
    ["vhost-limits"] => limits::vhost_limits(api, req, None).await,
    ["vhost-limits", vhost] => limits::vhost_limits(api, req, Some(vhost)).await,
    ["vhost-limits", vhost, name] => limits::vhost_limit(api, req, vhost, name).await,
    ["user-limits"] => limits::user_limits(api, req, None).await,
    ["user-limits", user] => limits::user_limits(api, req, Some(user)).await,
    ["user-limits", user, name] => limits::user_limit(api, req, user, name).await,
    ["queues"] => queues::list(api, req, None).await,
    ["queues", vhost] => queues::list(api, req, Some(vhost)).await,
    ["queues", vhost, name] => queues::queue(api, req, vhost, name).await,
    ["queues", vhost, name, "contents"] => queues::purge(api, req, vhost, name).await,
    ["queues", vhost, name, "get"] => queues::get(api, req, vhost, name).await,
    ["queues", vhost, name, "bindings"] => queues::bindings(api, req, vhost, name).await,
    ["queues", vhost, name, "actions"] => queues::actions(api, req, vhost, name).await,
    ["queues", "quorum", vhost, name, "status"] => {
        replicas::status(api, req, vhost, name).await
    },
    ["queues", "quorum", vhost, name, "replicas", "add"] => {
        replicas::change(api, req, vhost, name, true).await
    },
    ["queues", "quorum", vhost, name, "replicas", "delete"] => {
        replicas::change(api, req, vhost, name, false).await
    },
    ["exchanges"] => exchanges::list(api, req, None).await,
    ["exchanges", vhost] => exchanges::list(api, req, Some(vhost)).await,
    ["exchanges", vhost, name] => {
        exchanges::exchange(api, req, vhost, exchange_name(name)).await
    },
    ["exchanges", vhost, name, "publish"] => {
        exchanges::publish(api, req, vhost, exchange_name(name)).await
    },
    ["exchanges", vhost, name, "bindings", "source"] => {
        exchanges::bindings(api, req, vhost, exchange_name(name), true).await
    },
    ["exchanges", vhost, name, "bindings", "destination"] => {
        exchanges::bindings(api, req, vhost, exchange_name(name), false).await
    },
    ["bindings"] => bindings::list(api, req, None).await,
    ["bindings", vhost] => bindings::list(api, req, Some(vhost)).await,
    ["bindings", vhost, "e", source, kind, destination, ref props @ ..] if props.len() <= 1 => {
        let (kind, destination) = match kind {
            "q" => ("queue", destination),
            "e" => ("exchange", exchange_name(destination)),
            _ => return Err(Reply::not_found()),
        };
        let path = BindingPath {
            vhost,
            source: exchange_name(source),
            kind,
            destination,
            props: props.first().copied(),
        };
        bindings::binding(api, req, path).await
    },
    ["connections"] => connections::list(api, req, "connections", None).await,
    ["connections", name] => connections::connection(api, req, name).await,
    ["vhosts", vhost, "connections"] => {
        connections::list(api, req, "connections", Some(vhost)).await
    },
    ["channels"] => connections::list(api, req, "channels", None).await,
    ["channels", name] => connections::channel(api, req, name).await,
    ["vhosts", vhost, "channels"] => connections::list(api, req, "channels", Some(vhost)).await,
    ["consumers"] => connections::consumers(api, req, None).await,
    ["consumers", vhost] => connections::consumers(api, req, Some(vhost)).await,
    ["definitions"] => definitions::definitions(api, req, None).await,
    ["definitions", vhost] => definitions::definitions(api, req, Some(vhost)).await,
    // WarrenMQ's own: the Raft groups of the answering node.
    ["warren", "groups"] => {
        get_only(req)?;
        groups::groups(api, req).await
    },
}

#[cfg(test)]
mod tests {
    use super::known;

    #[test]
    fn known_paths_are_the_routes_only() {
        let k = |p: &str| known(&p.split('/').collect::<Vec<_>>());
        assert!(k("overview"));
        assert!(k("queues"));
        assert!(k("queues/v/q/actions"));
        assert!(k("health/checks/port-listener/5672"));
        assert!(k("bindings/v/e/x/q/q"));
        assert!(k("bindings/v/e/x/q/q/props"));
        assert!(k("warren/groups"));
        assert!(k("channels/c (1)"));
        assert!(!k("nosuch"));
        assert!(!k("queues/v/q/nosuch"));
        assert!(!k("bindings/v/e/x/q/q/props/more"));
        assert!(!k("health/checks/nosuch"));
    }
}
