//! `QueueMap`: the queues of this node, by (vhost, name). Two views: what clients of this
//! node use for a queue (its actor here, or the remote side of a link to the node that
//! runs it) and the actors running here (what links from other nodes reach). A queue's
//! remote side, once made, stays what this node's clients use, even when this node later
//! runs the actor itself, so that each publisher keeps one path and its order (the queue
//! drops an enqueue whose sequence number is not above the last it stored from that
//! publisher: two paths could make a later message overtake an earlier one, which would
//! then be taken for a retry). For the same reason an actor whose node loses the
//! leadership stays what clients use, relaying to a remote side.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::{QueueHandle, QueueMsg};

type Key = (String, String);

#[derive(Default)]
struct Maps {
    clients: HashMap<Key, QueueHandle>,
    actors: HashMap<Key, QueueHandle>,
}

/// The queues of this node. Shared by the broker, the metadata applier and replicas.
#[derive(Default)]
pub(crate) struct QueueMap(Mutex<Maps>);

impl QueueMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.0.lock().expect("queue map")
    }

    /// What this node's clients use for the queue, if it is running.
    pub(crate) fn for_clients(&self, vhost: &str, name: &str) -> Option<QueueHandle> {
        self.lock()
            .clients
            .get(&(vhost.to_owned(), name.to_owned()))
            .filter(|h| !h.is_closed())
            .cloned()
    }

    /// The queue's actor, if it runs on this node.
    pub(crate) fn actor(&self, vhost: &str, name: &str) -> Option<QueueHandle> {
        self.lock()
            .actors
            .get(&(vhost.to_owned(), name.to_owned()))
            .filter(|h| !h.is_closed())
            .cloned()
    }

    /// An actor started here: clients use it unless they already use a live path (a
    /// remote side, or a former actor relaying to one).
    pub(crate) fn add_actor(&self, vhost: &str, name: &str, actor: &QueueHandle) {
        let key = (vhost.to_owned(), name.to_owned());
        let mut maps = self.lock();
        maps.actors.insert(key.clone(), actor.clone());
        let keep = maps.clients.get(&key).is_some_and(|h| !h.is_closed());
        if !keep {
            maps.clients.insert(key, actor.clone());
        }
    }

    /// This node no longer leads the queue: the actor leaves the actors (links from other
    /// nodes go elsewhere) and relays what this node's clients send to `to`.
    pub(crate) fn hand_over(&self, vhost: &str, name: &str, actor: &QueueHandle, to: QueueHandle) {
        let key = (vhost.to_owned(), name.to_owned());
        let mut maps = self.lock();
        if maps.actors.get(&key).is_some_and(|h| h.same(actor)) {
            maps.actors.remove(&key);
        }
        drop(maps);
        if !actor.send(QueueMsg::Handover { to: to.clone() }) {
            shutdown(&to);
        }
    }

    /// What clients use, or `make()` if nothing live is there yet (made under the lock).
    pub(crate) fn client_or_insert(
        &self,
        vhost: &str,
        name: &str,
        make: impl FnOnce() -> QueueHandle,
    ) -> QueueHandle {
        let key = (vhost.to_owned(), name.to_owned());
        let mut maps = self.lock();
        if let Some(h) = maps.clients.get(&key).filter(|h| !h.is_closed()) {
            return h.clone();
        }
        let handle = make();
        maps.clients.insert(key, handle.clone());
        handle
    }

    /// An actor that stops while the queue lives on (this node no longer leads it).
    pub(crate) fn stop_actor(&self, vhost: &str, name: &str, actor: &QueueHandle) {
        let key = (vhost.to_owned(), name.to_owned());
        let mut maps = self.lock();
        if maps.actors.get(&key).is_some_and(|h| h.same(actor)) {
            maps.actors.remove(&key);
        }
        if maps.clients.get(&key).is_some_and(|h| h.same(actor)) {
            maps.clients.remove(&key);
        }
        drop(maps);
        shutdown(actor);
    }

    /// The queue was deleted: stop its actor and remote side here.
    pub(crate) fn remove(&self, vhost: &str, name: &str) {
        let key = (vhost.to_owned(), name.to_owned());
        let mut maps = self.lock();
        let actor = maps.actors.remove(&key);
        let client = maps.clients.remove(&key);
        drop(maps);
        if let Some(actor) = &actor {
            shutdown(actor);
        }
        if let Some(client) = client.filter(|c| !actor.as_ref().is_some_and(|a| a.same(c))) {
            shutdown(&client);
        }
    }
}

fn shutdown(handle: &QueueHandle) {
    let (reply, _rx) = oneshot::channel();
    handle.send(QueueMsg::Shutdown { reply });
}
