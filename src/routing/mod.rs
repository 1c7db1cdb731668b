//! Pure exchange routing: exchange types (direct, fanout, topic, headers) over a bindings
//! index, exchange-to-exchange bindings and alternate exchanges. No IO, no async.

mod headers;
mod topic;

use std::collections::{BTreeMap, BTreeSet};

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};

pub use headers::headers_match;
pub use topic::topic_match;

/// The four AMQP exchange types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    /// From the type string of `exchange.declare`.
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

/// Where a binding leads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Destination {
    Queue(String),
    Exchange(String),
}

/// One binding; its identity is all four fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub source: String,
    pub destination: Destination,
    pub routing_key: String,
    pub arguments: FieldTable,
}

/// What routing needs to know of an exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRoute {
    pub kind: ExchangeKind,
    pub alternate: Option<String>,
}

/// The queues a message goes to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteResult {
    pub queues: BTreeSet<String>,
}

/// One vhost's exchanges, queue names and bindings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingTable {
    exchanges: BTreeMap<String, ExchangeRoute>,
    queues: BTreeSet<String>,
    /// Bindings by source exchange, in creation order.
    bindings: BTreeMap<String, Vec<Binding>>,
}

impl RoutingTable {
    pub fn add_exchange(&mut self, name: &str, route: ExchangeRoute) {
        self.exchanges.insert(name.to_owned(), route);
    }

    /// Remove an exchange and every binding from or to it.
    pub fn remove_exchange(&mut self, name: &str) {
        self.exchanges.remove(name);
        self.bindings.remove(name);
        let dest = Destination::Exchange(name.to_owned());
        self.retain(|b| b.destination != dest);
    }

    pub fn add_queue(&mut self, name: &str) {
        self.queues.insert(name.to_owned());
    }

    /// Remove a queue and every binding to it; returns the sources that lost bindings.
    pub fn remove_queue(&mut self, name: &str) -> BTreeSet<String> {
        self.queues.remove(name);
        let dest = Destination::Queue(name.to_owned());
        let mut touched = BTreeSet::new();
        for (source, list) in self.bindings.iter_mut() {
            let before = list.len();
            list.retain(|b| b.destination != dest);
            if list.len() != before {
                touched.insert(source.clone());
            }
        }
        self.bindings.retain(|_, l| !l.is_empty());
        touched
    }

    fn retain(&mut self, keep: impl Fn(&Binding) -> bool) {
        for list in self.bindings.values_mut() {
            list.retain(&keep);
        }
        self.bindings.retain(|_, l| !l.is_empty());
    }

    /// Add a binding; false if it already existed.
    pub fn bind(&mut self, binding: Binding) -> bool {
        let list = self.bindings.entry(binding.source.clone()).or_default();
        if list.contains(&binding) {
            return false;
        }
        list.push(binding);
        true
    }

    /// Remove a binding; false if it did not exist.
    pub fn unbind(&mut self, binding: &Binding) -> bool {
        let Some(list) = self.bindings.get_mut(&binding.source) else {
            return false;
        };
        let before = list.len();
        list.retain(|b| b != binding);
        let removed = list.len() != before;
        if list.is_empty() {
            self.bindings.remove(&binding.source);
        }
        removed
    }

    /// Bindings whose source is `exchange`.
    pub fn bindings_from(&self, exchange: &str) -> &[Binding] {
        self.bindings
            .get(exchange)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether any binding has `exchange` as its destination.
    pub fn is_destination(&self, exchange: &str) -> bool {
        let dest = Destination::Exchange(exchange.to_owned());
        self.bindings
            .values()
            .flatten()
            .any(|b| b.destination == dest)
    }

    /// Every binding, by source.
    pub fn all_bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values().flatten()
    }

    /// The queues a message published to `exchange` reaches, following exchange-to-exchange
    /// bindings and, when nothing matched, alternate exchanges.
    pub fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: Option<&FieldTable>,
    ) -> RouteResult {
        self.route_keys(exchange, std::iter::once(routing_key), headers)
    }

    /// [`Self::route`] for a message with several routing keys (its own and those of its
    /// `CC` / `BCC` headers): the union of their queues; alternate exchanges only when
    /// none of the keys routed anywhere.
    pub fn route_keys<'k>(
        &self,
        exchange: &str,
        keys: impl Iterator<Item = &'k str> + Clone,
        headers: Option<&FieldTable>,
    ) -> RouteResult {
        let mut result = RouteResult::default();
        let mut visited = BTreeSet::new();
        let mut current = Some(exchange.to_owned());
        // Alternate exchanges are tried in turn while nothing is routed.
        while let Some(name) = current.take() {
            if !visited.insert(name.clone()) {
                break;
            }
            for key in keys.clone() {
                let mut seen = BTreeSet::new();
                self.route_into(&name, key, headers, &mut result, &mut seen);
            }
            if !result.queues.is_empty() {
                break;
            }
            current = self.exchanges.get(&name).and_then(|x| x.alternate.clone());
        }
        result
    }

    fn route_into(
        &self,
        exchange: &str,
        key: &str,
        headers: Option<&FieldTable>,
        out: &mut RouteResult,
        seen: &mut BTreeSet<String>,
    ) {
        if !seen.insert(exchange.to_owned()) {
            return;
        }
        if exchange.is_empty() {
            if self.queues.contains(key) {
                out.queues.insert(key.to_owned());
            }
            return;
        }
        let Some(x) = self.exchanges.get(exchange) else {
            return;
        };
        for b in self.bindings_from(exchange) {
            let matched = match x.kind {
                ExchangeKind::Direct => b.routing_key == key,
                ExchangeKind::Fanout => true,
                ExchangeKind::Topic => topic_match(&b.routing_key, key),
                ExchangeKind::Headers => headers_match(&b.arguments, headers),
            };
            if !matched {
                continue;
            }
            match &b.destination {
                Destination::Queue(q) => {
                    out.queues.insert(q.clone());
                }
                Destination::Exchange(e) => self.route_into(e, key, headers, out, seen),
            }
        }
    }
}

#[cfg(test)]
mod tests;
