//! Reading RabbitMQ's definitions JSON into [`Definitions`]: every entry typed, named in
//! any refusal (`queues[3] "orders": ...`), and checked as the machine checks it as it is
//! read, so the first bad entry in RabbitMQ's import order is the one named.
//!
//! What a file holds that WarrenMQ cannot represent is refused by name, never dropped: an
//! unknown key, an operator policy, a federation or shovel parameter, a cluster name, a
//! vhost description or tags. What RabbitMQ itself skips on import is skipped and
//! reported: queues and exchanges named `amq.*` and the default exchange, and the
//! `internal_cluster_id` global parameter (the identity of the exporting cluster).

use amq_protocol::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value};

use super::fields::{field_table, limits_of};
use super::{
    label, BindingDef, Definitions, ExchangeDef, PermissionDef, PolicyDef, QueueDef,
    TopicPermissionDef, UserDef, VhostDef, VhostLimitsDef, DEFAULT_VHOST_DESCRIPTION,
};
use crate::metadata::password::HashingAlgorithm;
use crate::metadata::{Destination, ExchangeKind, Limits, Policy, PolicyTarget};

/// A parsed file and what it held that is skipped as RabbitMQ skips it.
#[derive(Debug)]
pub struct Parsed {
    pub definitions: Definitions,
    pub skipped: Vec<String>,
}

/// Why a file cannot be imported, by rabbitmqctl's kind of failure.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON.
    Json(String),
    /// JSON, but not an object.
    NotAnObject(String),
    /// An entry WarrenMQ refuses, named.
    Entry(String),
}

const TOP_KEYS: &[&str] = &[
    "rabbit_version",
    "rabbitmq_version",
    "product_name",
    "product_version",
    "users",
    "vhosts",
    "permissions",
    "topic_permissions",
    "parameters",
    "global_parameters",
    "policies",
    "queues",
    "exchanges",
    "bindings",
];

/// One entry of a section, for typed reads with messages that name it.
struct Entry<'a> {
    section: &'static str,
    index: u32,
    name: String,
    object: &'a Map<String, Value>,
}

impl<'a> Entry<'a> {
    fn new(
        section: &'static str,
        index: usize,
        value: &'a Value,
        name_key: &str,
        known: &[&str],
    ) -> Result<Entry<'a>, String> {
        let index = index as u32;
        let Some(object) = value.as_object() else {
            return Err(format!("{section}[{index}]: not a JSON object"));
        };
        let name = object
            .get(name_key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let entry = Entry {
            section,
            index,
            name,
            object,
        };
        if let Some(k) = object.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(entry.fail(format!(
                "key '{k}' is not known to WarrenMQ (refused rather than ignored)"
            )));
        }
        Ok(entry)
    }

    fn fail(&self, why: impl std::fmt::Display) -> String {
        format!("{}: {why}", label(self.section, self.index, &self.name))
    }

    fn string(&self, key: &str) -> Result<String, String> {
        self.opt_string(key)?
            .ok_or_else(|| self.fail(format!("'{key}' is missing")))
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>, String> {
        match self.object.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.fail(format!("'{key}' must be a string, not {other}"))),
        }
    }

    fn boolean(&self, key: &str, default: Option<bool>) -> Result<bool, String> {
        match (self.object.get(key), default) {
            (Some(Value::Bool(b)), _) => Ok(*b),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.fail(format!("'{key}' is missing"))),
            (Some(other), _) => {
                Err(self.fail(format!("'{key}' must be true or false, not {other}")))
            }
        }
    }

    fn arguments(&self) -> Result<FieldTable, String> {
        match self.object.get("arguments") {
            None | Some(Value::Null) => Ok(FieldTable::default()),
            Some(Value::Object(o)) => field_table(o).map_err(|e| self.fail(e)),
            Some(other) => Err(self.fail(format!("'arguments' must be an object, not {other}"))),
        }
    }
}

fn tags_of(e: &Entry, v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                Value::String(s) => Ok(s.clone()),
                other => Err(e.fail(format!("a tag must be a string, not {other}"))),
            })
            .collect(),
        Some(other) => Err(e.fail(format!("'tags' must be a list, not {other}"))),
    }
}

/// The section `key` of the file: its entries (none when absent or null).
fn section<'a>(top: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], ParseError> {
    match top.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(ParseError::Entry(format!(
            "'{key}' must be a list, not {other}"
        ))),
    }
}

/// Read a definitions file. Plain `password`s (RabbitMQ's files may carry them for new
/// users) are hashed here with salts from `salt`, so the log never holds one.
pub fn parse(text: &str, mut salt: impl FnMut() -> [u8; 4]) -> Result<Parsed, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    let Value::Object(top) = &value else {
        return Err(ParseError::NotAnObject(format!("{{:badmap, {value}}}")));
    };
    if let Some(k) = top.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
        return Err(ParseError::Entry(format!(
            "definitions key '{k}' is not known to WarrenMQ (refused rather than ignored)"
        )));
    }
    let mut d = Definitions::default();
    let mut skipped = Vec::new();
    let entry = ParseError::Entry;
    for (i, v) in section(top, "users")?.iter().enumerate() {
        let def = user(i, v, &mut salt).map_err(entry)?;
        def.check().map_err(entry)?;
        d.users.push(def);
    }
    let mut own_limits = Vec::new();
    for (i, v) in section(top, "vhosts")?.iter().enumerate() {
        let (def, limits) = vhost(i, v).map_err(entry)?;
        def.check().map_err(entry)?;
        own_limits.extend(limits.map(|l| (def.index, def.name.clone(), l)));
        d.vhosts.push(def);
    }
    for (i, v) in section(top, "permissions")?.iter().enumerate() {
        let e = Entry::new(
            "permissions",
            i,
            v,
            "user",
            &["user", "vhost", "configure", "write", "read"],
        )
        .map_err(entry)?;
        let def = PermissionDef {
            index: e.index,
            user: e.string("user").map_err(entry)?,
            vhost: e.string("vhost").map_err(entry)?,
            configure: e.string("configure").map_err(entry)?,
            write: e.string("write").map_err(entry)?,
            read: e.string("read").map_err(entry)?,
        };
        def.check().map_err(entry)?;
        d.permissions.push(def);
    }
    for (i, v) in section(top, "topic_permissions")?.iter().enumerate() {
        let keys = &["user", "vhost", "exchange", "write", "read"];
        let e = Entry::new("topic_permissions", i, v, "user", keys).map_err(entry)?;
        let def = TopicPermissionDef {
            index: e.index,
            user: e.string("user").map_err(entry)?,
            vhost: e.string("vhost").map_err(entry)?,
            exchange: e.string("exchange").map_err(entry)?,
            write: e.string("write").map_err(entry)?,
            read: e.string("read").map_err(entry)?,
        };
        def.check().map_err(entry)?;
        d.topic_permissions.push(def);
    }
    for (i, v) in section(top, "parameters")?.iter().enumerate() {
        let def = parameter(i, v).map_err(entry)?;
        def.check().map_err(entry)?;
        d.vhost_limits.push(def);
    }
    for (i, v) in section(top, "global_parameters")?.iter().enumerate() {
        let e = Entry::new("global_parameters", i, v, "name", &["name", "value"]).map_err(entry)?;
        match e.name.as_str() {
            "internal_cluster_id" => skipped.push(e.fail(
                "the exporting cluster's identity; WarrenMQ has none to set, skipped",
            )),
            "cluster_name" => return Err(entry(e.fail(
                "WarrenMQ names its cluster with set_cluster_name (or PUT /api/cluster-name), not from definitions (refused rather than ignored)",
            ))),
            _ => return Err(entry(e.fail(
                "global parameter not supported by WarrenMQ (refused rather than ignored)",
            ))),
        }
    }
    for (i, v) in section(top, "policies")?.iter().enumerate() {
        let def = policy(i, v).map_err(entry)?;
        def.check().map_err(entry)?;
        d.policies.push(def);
    }
    for (i, v) in section(top, "queues")?.iter().enumerate() {
        match queue(i, v).map_err(entry)? {
            Ok(q) => {
                q.check().map_err(entry)?;
                d.queues.push(q);
            }
            Err(note) => skipped.push(note),
        }
    }
    for (i, v) in section(top, "exchanges")?.iter().enumerate() {
        match exchange(i, v).map_err(entry)? {
            Ok(x) => d.exchanges.push(x),
            Err(note) => skipped.push(note),
        }
    }
    for (i, v) in section(top, "bindings")?.iter().enumerate() {
        d.bindings.push(binding(i, v).map_err(entry)?);
    }
    // RabbitMQ 3.10 exports a vhost's limits twice and imports only the parameter.
    for (index, name, own) in own_limits {
        let param = d
            .vhost_limits
            .iter()
            .rev()
            .find(|l| l.vhost == name)
            .map(|l| l.limits.clone())
            .unwrap_or_default();
        if own != param {
            return Err(entry(format!(
                "{}: its limits {own:?} differ from its vhost-limits parameter {param:?}",
                label("vhosts", index, &name)
            )));
        }
    }
    Ok(Parsed {
        definitions: d,
        skipped,
    })
}

fn user(i: usize, v: &Value, salt: &mut impl FnMut() -> [u8; 4]) -> Result<UserDef, String> {
    let keys = &[
        "name",
        "password_hash",
        "password",
        "hashing_algorithm",
        "tags",
        "limits",
    ];
    let e = Entry::new("users", i, v, "name", keys)?;
    let name = e.string("name")?;
    let algorithm = match e.opt_string("hashing_algorithm")? {
        None => None,
        Some(a) => Some(HashingAlgorithm::parse(&a).ok_or_else(|| {
            e.fail(format!(
                "hashing_algorithm '{a}' is not one WarrenMQ knows (rabbit_password_hashing_sha256, _sha512 or _md5)"
            ))
        })?),
    };
    let password_hash = match (e.opt_string("password")?, e.opt_string("password_hash")?) {
        (Some(_), Some(_)) => return Err(e.fail("both password and password_hash are given")),
        (Some(password), None) => crate::metadata::hash_password(&password, salt()),
        (None, Some(hash)) => {
            let found = HashingAlgorithm::of(&hash);
            match (algorithm, found) {
                _ if hash.is_empty() => {}
                (_, None) => {
                    return Err(e.fail("password_hash is not a base64 SHA-256, SHA-512 or MD5 hash"))
                }
                (Some(want), Some(got)) if want != got => {
                    return Err(e.fail(format!(
                        "password_hash is not a {} hash (it has the length of a {} one)",
                        want.name(),
                        got.name()
                    )))
                }
                _ => {}
            }
            hash
        }
        (None, None) => String::new(),
    };
    let limits = match e.object.get("limits") {
        None | Some(Value::Null) => None,
        Some(v) => Some(limits_of(v).map_err(|why| e.fail(why))?),
    };
    Ok(UserDef {
        index: e.index,
        name,
        password_hash,
        tags: tags_of(&e, e.object.get("tags"))?,
        limits,
    })
}

/// A vhost, with the limits it lists (checked against its parameter's).
fn vhost(i: usize, v: &Value) -> Result<(VhostDef, Option<Limits>), String> {
    let keys = &[
        "name",
        "limits",
        "metadata",
        "description",
        "tags",
        "tracing",
    ];
    let e = Entry::new("vhosts", i, v, "name", keys)?;
    let name = e.string("name")?;
    let metadata = match e.object.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(e.fail(format!("'metadata' must be an object, not {other}"))),
    };
    let known = ["description", "tags", "default_queue_type"];
    if let Some(k) = metadata.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(e.fail(format!(
            "metadata key '{k}' is not known to WarrenMQ (refused rather than ignored)"
        )));
    }
    let description = e.object.get("description").or(metadata.get("description"));
    if let Some(d) = description
        .filter(|d| !["", DEFAULT_VHOST_DESCRIPTION].contains(&d.as_str().unwrap_or("?")))
    {
        return Err(e.fail(format!(
            "vhost descriptions ({d}) are not supported by WarrenMQ yet (refused rather than ignored)"
        )));
    }
    let tags = tags_of(&e, e.object.get("tags").or(metadata.get("tags")))?;
    if !tags.is_empty() {
        return Err(e.fail(format!(
            "vhost tags ({tags:?}) are not supported by WarrenMQ yet (refused rather than ignored)"
        )));
    }
    if let Some(t) = metadata
        .get("default_queue_type")
        .filter(|t| !["classic", "undefined"].contains(&t.as_str().unwrap_or("?")))
    {
        return Err(e.fail(format!(
            "a vhost's default queue type ({t}) is not supported by WarrenMQ yet (refused rather than ignored)"
        )));
    }
    if e.boolean("tracing", Some(false))? {
        return Err(
            e.fail("tracing is not supported by WarrenMQ yet (refused rather than ignored)")
        );
    }
    let limits = match e.object.get("limits") {
        None | Some(Value::Null) => None,
        Some(own) => Some(limits_of(own).map_err(|why| e.fail(why))?),
    };
    let def = VhostDef {
        index: e.index,
        name,
    };
    Ok((def, limits))
}

fn parameter(i: usize, v: &Value) -> Result<VhostLimitsDef, String> {
    let e = Entry::new(
        "parameters",
        i,
        v,
        "name",
        &["vhost", "component", "name", "value"],
    )?;
    let component = e.string("component")?;
    let value = e.object.get("value").unwrap_or(&Value::Null);
    match component.as_str() {
        "vhost-limits" => Ok(VhostLimitsDef {
            index: e.index,
            vhost: e.string("vhost")?,
            limits: limits_of(value).map_err(|why| e.fail(why))?,
        }),
        "operator_policy" => {
            // Its definition is an object, or (as 3.10.8 exports it) a list of pairs.
            let key = match &value["definition"] {
                Value::Object(o) => o.keys().next().cloned(),
                Value::Array(pairs) => pairs.first().and_then(|p| p[0].as_str()).map(str::to_owned),
                _ => None,
            };
            Err(e.fail(format!(
                "operator policies are not supported by WarrenMQ yet: every key one can hold{} is a feature WarrenMQ lacks (refused rather than ignored)",
                key.map(|k| format!(", here '{k}',")).unwrap_or_default()
            )))
        }
        other => Err(e.fail(format!(
            "component '{other}' is not supported by WarrenMQ (refused rather than ignored)"
        ))),
    }
}

fn policy(i: usize, v: &Value) -> Result<PolicyDef, String> {
    let keys = &[
        "vhost",
        "name",
        "pattern",
        "apply-to",
        "definition",
        "priority",
    ];
    let e = Entry::new("policies", i, v, "name", keys)?;
    let apply_to = e.opt_string("apply-to")?.unwrap_or_else(|| "all".into());
    let apply_to = PolicyTarget::parse(&apply_to)
        .ok_or_else(|| e.fail(format!("apply-to '{apply_to}' unrecognised")))?;
    let priority = match e.object.get("priority") {
        None => 0,
        Some(p) => p
            .as_i64()
            .ok_or_else(|| e.fail(format!("priority must be an integer, not {p}")))?,
    };
    let definition = match e.object.get("definition") {
        Some(d @ Value::Object(_)) => d.to_string(),
        other => {
            return Err(e.fail(format!(
                "'definition' must be an object, not {}",
                other.unwrap_or(&Value::Null)
            )))
        }
    };
    Ok(PolicyDef {
        index: e.index,
        vhost: e.string("vhost")?,
        name: e.string("name")?,
        policy: Policy {
            pattern: e.string("pattern")?,
            apply_to,
            priority,
            definition,
        },
    })
}

/// A queue, or (`Err`) why it is skipped as RabbitMQ skips it.
fn queue(i: usize, v: &Value) -> Result<Result<QueueDef, String>, String> {
    let keys = &[
        "name",
        "vhost",
        "durable",
        "auto_delete",
        "arguments",
        "type",
    ];
    let e = Entry::new("queues", i, v, "name", keys)?;
    let name = e.string("name")?;
    if name.starts_with("amq.") {
        return Ok(Err(e.fail(
            "a queue whose name begins with 'amq.' is skipped, as RabbitMQ skips it",
        )));
    }
    let arguments = e.arguments()?;
    if let Some(t) = e.opt_string("type")? {
        let implied = match arguments.inner().get("x-queue-type") {
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            _ => "classic".into(),
        };
        if t != implied {
            return Err(e.fail(format!(
                "type '{t}' differs from its x-queue-type '{implied}'"
            )));
        }
    }
    Ok(Ok(QueueDef {
        index: e.index,
        vhost: e.string("vhost")?,
        name,
        durable: e.boolean("durable", None)?,
        auto_delete: e.boolean("auto_delete", None)?,
        arguments,
    }))
}

/// An exchange, or (`Err`) why it is skipped as RabbitMQ skips it.
fn exchange(i: usize, v: &Value) -> Result<Result<ExchangeDef, String>, String> {
    let keys = &[
        "name",
        "vhost",
        "type",
        "durable",
        "auto_delete",
        "internal",
        "arguments",
    ];
    let e = Entry::new("exchanges", i, v, "name", keys)?;
    let name = e.string("name")?;
    if name.is_empty() || name.starts_with("amq.") {
        return Ok(Err(e.fail(
            "the default exchange and exchanges named 'amq.*' are skipped, as RabbitMQ skips them",
        )));
    }
    let kind = e.string("type")?;
    let kind = ExchangeKind::parse(&kind)
        .ok_or_else(|| e.fail(format!("unknown exchange type '{kind}'")))?;
    Ok(Ok(ExchangeDef {
        index: e.index,
        vhost: e.string("vhost")?,
        name,
        kind,
        durable: e.boolean("durable", None)?,
        auto_delete: e.boolean("auto_delete", None)?,
        internal: e.boolean("internal", Some(false))?,
        arguments: e.arguments()?,
    }))
}

fn binding(i: usize, v: &Value) -> Result<BindingDef, String> {
    let keys = &[
        "source",
        "vhost",
        "destination",
        "destination_type",
        "routing_key",
        "arguments",
    ];
    let e = Entry::new("bindings", i, v, "source", keys)?;
    let to = e.string("destination")?;
    let destination = match e.string("destination_type")?.as_str() {
        "queue" => Destination::Queue(to),
        "exchange" => Destination::Exchange(to),
        other => {
            return Err(e.fail(format!(
                "destination_type '{other}' is neither queue nor exchange"
            )))
        }
    };
    Ok(BindingDef {
        index: e.index,
        vhost: e.string("vhost")?,
        source: e.string("source")?,
        destination,
        routing_key: e.opt_string("routing_key")?.unwrap_or_default(),
        arguments: e.arguments()?,
    })
}
