//! `/api/definitions` (+ per vhost): GET is the node's `export_definitions`, POST its
//! `import_definitions` (all or nothing, as warrenctl's). A vhost's definitions are its
//! queues, exchanges, bindings, policies and parameters without their `vhost` key, as
//! RabbitMQ exports them; imported into the vhost of the path.

use axum::http::Method;
use serde_json::{json, Map, Value};

use super::api::Api;
use super::auth::Need;
use super::queues::vhost_in_path;
use super::reply::{Answer, Reply};
use super::request::Request;

const VHOST_SECTIONS: [&str; 5] = ["queues", "exchanges", "bindings", "policies", "parameters"];

fn of_vhost(all: &Value, vhost: &str) -> Value {
    let mut out = Map::new();
    for key in [
        "rabbit_version",
        "rabbitmq_version",
        "product_name",
        "product_version",
    ] {
        if let Some(v) = all.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for section in VHOST_SECTIONS {
        let items: Vec<Value> = all[section]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|i| i["vhost"] == vhost)
            .map(|i| {
                let mut i = i.clone();
                if let Some(o) = i.as_object_mut() {
                    o.remove("vhost");
                }
                i
            })
            .collect();
        out.insert(section.into(), Value::Array(items));
    }
    Value::Object(out)
}

/// A vhost's definitions file made whole: every entry in `vhost`, nothing else.
fn into_vhost(mut file: Map<String, Value>, vhost: &str) -> Result<Value, Reply> {
    let mut out = Map::new();
    for section in VHOST_SECTIONS {
        let Some(items) = file.remove(section) else {
            continue;
        };
        let Value::Array(mut items) = items else {
            return Err(Reply::bad_request(format!("'{section}' must be a list")));
        };
        for i in &mut items {
            if let Some(o) = i.as_object_mut() {
                o.insert("vhost".into(), json!(vhost));
            }
        }
        out.insert(section.into(), Value::Array(items));
    }
    Ok(Value::Object(out))
}

pub(super) async fn definitions(api: &Api, req: &Request, vhost: Option<&str>) -> Answer {
    req.need(api, Need::Admin).await?;
    if let Some(v) = vhost {
        vhost_in_path(api, req, v).await?;
    }
    match req.method {
        Method::GET => {
            let all = api
                .run("export_definitions", "/", Vec::new(), |o| {
                    Reply::internal(o.error.as_str())
                })
                .await?;
            Ok(Reply::json(match vhost {
                Some(v) => of_vhost(&all, v),
                None => all,
            }))
        }
        Method::POST => {
            let text = match vhost {
                None => String::from_utf8_lossy(&req.body).into_owned(),
                Some(v) => into_vhost(req.object()?, v)?.to_string(),
            };
            if serde_json::from_str::<Value>(&text).is_err() {
                return Err(Reply::bad_request("failed_to_parse_json"));
            }
            api.run("import_definitions", "/", vec![text], |o| {
                Reply::bad_request(o.error.as_str())
            })
            .await?;
            Ok(Reply::status(204))
        }
        _ => Err(Reply::method_not_allowed()),
    }
}
