//! Which handler answers a path: the decoded segments matched against RabbitMQ 3.10's
//! `/api/*` routes, after the request's user is authenticated. An unknown path is 404.

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
    access, bindings, connections, definitions, exchanges, overview, policies, queues, replicas,
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
    if s.first() != Some(&"api") {
        return Err(Reply::not_found());
    }
    let user = authenticate(api, incoming.authorization.as_deref(), incoming.peer).await?;
    let req = Request {
        method: incoming.method,
        query: query(incoming.query.as_deref()),
        body: incoming.body,
        reason: incoming.reason,
        user,
    };
    let get_only = |req: &Request| match req.is(Method::GET) {
        true => Ok(()),
        false => Err(Reply::method_not_allowed()),
    };
    let req = &req;
    match s[1..] {
        ["overview"] => {
            get_only(req)?;
            overview::overview(api, req).await
        }
        ["whoami"] => overview::whoami(req).await,
        ["nodes"] => overview::nodes(api, req, None).await,
        ["nodes", name] => overview::nodes(api, req, Some(name)).await,
        ["cluster-name"] => {
            get_only(req)?;
            overview::cluster_name(api).await
        }
        ["aliveness-test", vhost] => overview::aliveness(api, req, vhost).await,
        ["healthchecks", "node"] | ["healthchecks", "node", _] => overview::node_health(api).await,
        ["health", "checks", "alarms"] => overview::alarms(api, false).await,
        ["health", "checks", "local-alarms"] => overview::alarms(api, true).await,
        ["vhosts"] => {
            get_only(req)?;
            access::vhosts(api, req).await
        }
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
        ["operator-policies"] => policies::operator_policies(api, req, None).await,
        ["operator-policies", vhost] => policies::operator_policies(api, req, Some(vhost)).await,
        ["vhost-limits"] => policies::vhost_limits(api, req, None).await,
        ["vhost-limits", vhost] => policies::vhost_limits(api, req, Some(vhost)).await,
        ["user-limits"] => policies::user_limits(api, req, None).await,
        ["user-limits", user] => policies::user_limits(api, req, Some(user)).await,
        ["queues"] => queues::list(api, req, None).await,
        ["queues", vhost] => queues::list(api, req, Some(vhost)).await,
        ["queues", vhost, name] => queues::queue(api, req, vhost, name).await,
        ["queues", vhost, name, "contents"] => queues::purge(api, req, vhost, name).await,
        ["queues", vhost, name, "get"] => queues::get(api, req, vhost, name).await,
        ["queues", vhost, name, "bindings"] => queues::bindings(api, req, vhost, name).await,
        ["queues", "quorum", vhost, name, "status"] => {
            replicas::status(api, req, vhost, name).await
        }
        ["queues", "quorum", vhost, name, "replicas", "add"] => {
            replicas::change(api, req, vhost, name, true).await
        }
        ["queues", "quorum", vhost, name, "replicas", "delete"] => {
            replicas::change(api, req, vhost, name, false).await
        }
        ["exchanges"] => exchanges::list(api, req, None).await,
        ["exchanges", vhost] => exchanges::list(api, req, Some(vhost)).await,
        ["exchanges", vhost, name] => {
            exchanges::exchange(api, req, vhost, exchange_name(name)).await
        }
        ["exchanges", vhost, name, "publish"] => {
            exchanges::publish(api, req, vhost, exchange_name(name)).await
        }
        ["exchanges", vhost, name, "bindings", "source"] => {
            exchanges::bindings(api, req, vhost, exchange_name(name), true).await
        }
        ["exchanges", vhost, name, "bindings", "destination"] => {
            exchanges::bindings(api, req, vhost, exchange_name(name), false).await
        }
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
        }
        ["connections"] => connections::list(api, req, "connections", None).await,
        ["connections", name] => connections::connection(api, req, name).await,
        ["vhosts", vhost, "connections"] => {
            connections::list(api, req, "connections", Some(vhost)).await
        }
        ["channels"] => connections::list(api, req, "channels", None).await,
        ["channels", name] => connections::channel(api, req, name).await,
        ["vhosts", vhost, "channels"] => connections::list(api, req, "channels", Some(vhost)).await,
        ["consumers"] => connections::consumers(api, req, None).await,
        ["consumers", vhost] => connections::consumers(api, req, Some(vhost)).await,
        ["definitions"] => definitions::definitions(api, req, None).await,
        ["definitions", vhost] => definitions::definitions(api, req, Some(vhost)).await,
        // Known to RabbitMQ but not served here yet, or not an API path at all.
        _ => Err(Reply::not_found()),
    }
}
