//! The node's registry of open client connections: what `list_connections`,
//! `list_channels` and `list_consumers` show, and the way to ask one connection to close.
//! Written when a connection opens or closes and when it opens or closes a channel, never
//! on the per-message path; channel and consumer details are asked of the connection
//! task on demand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::types::FieldTable;
use tokio::sync::{mpsc, oneshot};

use crate::stats::{LinkStats, Snapshot};

/// What a connection settled in its handshake; fixed for its life.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The node-local connection id.
    pub id: u64,
    pub peer: SocketAddr,
    /// The address of the listener the client reached.
    pub local: SocketAddr,
    pub user: String,
    pub vhost: String,
    pub auth_mechanism: String,
    pub client_properties: FieldTable,
    /// Milliseconds since the Unix epoch.
    pub connected_at: u64,
    pub frame_max: u32,
    pub channel_max: u16,
    /// The negotiated heartbeat in seconds (rabbitmqctl's `timeout`).
    pub heartbeat: u16,
}

impl ConnectionInfo {
    /// RabbitMQ's connection name, `PEER_IP:PEER_PORT -> LOCAL_IP:LOCAL_PORT` (IPv6
    /// addresses in brackets, as `rabbit_net:connection_string`).
    pub fn name(&self) -> String {
        format!("{} -> {}", self.peer, self.local)
    }
}

/// One consumer as `list_consumers` shows it.
#[derive(Debug, Clone)]
pub struct ConsumerInfo {
    pub queue: String,
    pub tag: String,
    pub ack_required: bool,
    /// The channel's per-consumer prefetch when the consumer was registered.
    pub prefetch_count: u32,
    pub arguments: FieldTable,
}

/// One channel as `list_channels` shows it, read from its connection task.
#[derive(Debug, Clone, Default)]
pub struct ChannelInfo {
    pub number: u16,
    pub confirm: bool,
    pub transactional: bool,
    pub messages_unacknowledged: u64,
    pub messages_unconfirmed: u64,
    pub messages_uncommitted: u64,
    pub acks_uncommitted: u64,
    pub prefetch_count: u32,
    pub global_prefetch_count: u32,
    pub consumers: Vec<ConsumerInfo>,
    /// Its `message_stats` (`None` where nothing counts them).
    pub stats: Option<Snapshot>,
}

/// What an operator asks of a live connection task.
#[derive(Debug)]
pub enum ConnControl {
    /// Close with 320 CONNECTION_FORCED and this reason (`close_connection`).
    Close { reason: String },
    /// Report the open channels and their consumers.
    Channels {
        reply: oneshot::Sender<Vec<ChannelInfo>>,
    },
}

/// An open connection as the registry holds it.
#[derive(Debug)]
pub struct RegisteredConn {
    pub info: ConnectionInfo,
    channels: AtomicU32,
    closing: AtomicBool,
    published: AtomicBool,
    control: mpsc::UnboundedSender<ConnControl>,
    /// Its traffic (`recv_oct`, `send_oct`, ...), counted by its task.
    traffic: Arc<LinkStats>,
}

impl RegisteredConn {
    /// Open channels, as of the last channel open or close.
    pub fn channels(&self) -> u32 {
        self.channels.load(Ordering::Relaxed)
    }

    /// rabbitmqctl's `state`: `running`; `closing` once `connection.close` went out;
    /// under a resource alarm `blocked` for a connection that published (it is no longer
    /// read from), `blocking` for the others.
    pub fn state(&self, alarm: bool) -> &'static str {
        if self.closing.load(Ordering::Relaxed) {
            "closing"
        } else if alarm && self.published.load(Ordering::Relaxed) {
            "blocked"
        } else if alarm {
            "blocking"
        } else {
            "running"
        }
    }

    /// Bytes and packets in and out, with their rates.
    pub fn traffic(&self) -> Snapshot {
        self.traffic.snapshot()
    }

    /// Ask the connection to close with 320 and `reason`; false if its task is gone.
    pub fn close(&self, reason: &str) -> bool {
        self.control
            .send(ConnControl::Close {
                reason: reason.to_owned(),
            })
            .is_ok()
    }

    /// The connection's channels, or `None` if its task did not answer within `wait`
    /// (it may be busy with a slow operation, or closing).
    pub async fn channel_infos(&self, wait: Duration) -> Option<Vec<ChannelInfo>> {
        let (reply, rx) = oneshot::channel();
        self.control.send(ConnControl::Channels { reply }).ok()?;
        tokio::time::timeout(wait, rx).await.ok()?.ok()
    }
}

/// Connections and channels counted against vhost and user limits (see
/// [`ConnectionRegistry::counts`]); added up over the nodes of a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitCounts {
    pub vhost_connections: u64,
    pub user_connections: u64,
    pub user_channels: u64,
}

impl std::ops::AddAssign for LimitCounts {
    fn add_assign(&mut self, other: LimitCounts) {
        self.vhost_connections += other.vhost_connections;
        self.user_connections += other.user_connections;
        self.user_channels += other.user_channels;
    }
}

/// The open connections of this node.
#[derive(Debug)]
pub struct ConnectionRegistry {
    node_name: String,
    /// This app start's number, carried in every pid as an Erlang node's creation is:
    /// a pid from before a restart names no connection of this run.
    creation: u64,
    conns: Mutex<BTreeMap<u64, Arc<RegisteredConn>>>,
}

/// A connection's entry; dropping it (the connection task ends) removes the entry.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<ConnectionRegistry>,
    entry: Arc<RegisteredConn>,
}

impl Registration {
    pub fn set_channels(&self, open: usize) {
        let open = u32::try_from(open).unwrap_or(u32::MAX);
        self.entry.channels.store(open, Ordering::Relaxed);
    }

    pub fn set_closing(&self) {
        self.entry.closing.store(true, Ordering::Relaxed);
    }

    pub fn set_published(&self) {
        self.entry.published.store(true, Ordering::Relaxed);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry
            .conns
            .lock()
            .expect("connection registry lock")
            .remove(&self.entry.info.id);
    }
}

/// A pid as rabbitmqctl writes one, `<NODE.CREATION.ID.SERIAL>` (`rabbit_misc:
/// string_to_pid`'s syntax). WarrenMQ's are `<NODE.CREATION.CONNECTION.CHANNEL>`, channel
/// 0 for the connection itself: stable for the connection's life, unique per node run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pid {
    pub node: String,
    pub creation: u64,
    pub connection: u64,
    pub channel: u64,
}

impl Pid {
    /// Parse rabbitmqctl's pid syntax; `None` where rabbitmqctl says `invalid_pid_syntax`.
    pub fn parse(text: &str) -> Option<Pid> {
        let inner = text.strip_prefix('<')?.strip_suffix('>')?;
        let mut parts = inner.rsplitn(4, '.');
        let mut number = || -> Option<u64> {
            let p = parts.next()?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let (channel, connection, creation) = (number()?, number()?, number()?);
        let node = parts.next()?.to_owned();
        Some(Pid {
            node,
            creation,
            connection,
            channel,
        })
    }
}

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<{}.{}.{}.{}>",
            self.node, self.creation, self.connection, self.channel
        )
    }
}

impl ConnectionRegistry {
    pub fn new(node_name: String, creation: u64) -> ConnectionRegistry {
        ConnectionRegistry {
            node_name,
            creation,
            conns: Mutex::default(),
        }
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Add an open connection; it stays listed until the returned guard drops.
    pub fn register(
        self: &Arc<Self>,
        info: ConnectionInfo,
        control: mpsc::UnboundedSender<ConnControl>,
        traffic: Arc<LinkStats>,
    ) -> Registration {
        let entry = Arc::new(RegisteredConn {
            info,
            channels: AtomicU32::new(0),
            closing: AtomicBool::new(false),
            published: AtomicBool::new(false),
            control,
            traffic,
        });
        self.conns
            .lock()
            .expect("connection registry lock")
            .insert(entry.info.id, entry.clone());
        Registration {
            registry: self.clone(),
            entry,
        }
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.conns.lock().expect("connection registry lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every open connection, oldest first.
    pub fn list(&self) -> Vec<Arc<RegisteredConn>> {
        let conns = self.conns.lock().expect("connection registry lock");
        conns.values().cloned().collect()
    }

    /// The pid of connection `id`'s channel `channel` (0: the connection itself).
    pub fn pid(&self, id: u64, channel: u16) -> Pid {
        Pid {
            node: self.node_name.clone(),
            creation: self.creation,
            connection: id,
            channel: u64::from(channel),
        }
    }

    /// The open connection a pid names, if it is one of this node's in this run.
    pub fn by_pid(&self, pid: &Pid) -> Option<Arc<RegisteredConn>> {
        if pid.node != self.node_name || pid.creation != self.creation || pid.channel != 0 {
            return None;
        }
        let conns = self.conns.lock().expect("connection registry lock");
        conns.get(&pid.connection).cloned()
    }

    /// What this node counts towards the vhost and user limits of a new connection or
    /// channel: `vhost`'s connections, `user`'s connections and `user`'s open channels.
    pub fn counts(&self, vhost: &str, user: &str) -> LimitCounts {
        let conns = self.conns.lock().expect("connection registry lock");
        let mut counts = LimitCounts::default();
        for c in conns.values() {
            if c.info.vhost == vhost {
                counts.vhost_connections += 1;
            }
            if c.info.user == user {
                counts.user_connections += 1;
                counts.user_channels += u64::from(c.channels());
            }
        }
        counts
    }

    /// The open connections with this name (at most one unless two listeners share an
    /// address).
    pub fn by_name(&self, name: &str) -> Vec<Arc<RegisteredConn>> {
        self.list()
            .into_iter()
            .filter(|c| c.info.name() == name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64, peer_port: u16) -> ConnectionInfo {
        ConnectionInfo {
            id,
            peer: SocketAddr::from(([127, 0, 0, 1], peer_port)),
            local: SocketAddr::from(([127, 0, 0, 1], 5672)),
            user: "guest".into(),
            vhost: "/".into(),
            auth_mechanism: "PLAIN".into(),
            client_properties: FieldTable::default(),
            connected_at: 1,
            frame_max: 131072,
            channel_max: 2047,
            heartbeat: 60,
        }
    }

    fn registry() -> Arc<ConnectionRegistry> {
        Arc::new(ConnectionRegistry::new("warren@n1".into(), 77))
    }

    #[test]
    fn pids_round_trip_in_rabbitmqctl_s_syntax() {
        let r = registry();
        let pid = r.pid(12, 3);
        assert_eq!(pid.to_string(), "<warren@n1.77.12.3>");
        assert_eq!(Pid::parse(&pid.to_string()), Some(pid));
        // Dots in a node name are the node's; the three numbers are the last parts.
        let dotted = Pid::parse("<warren@host.example.com.1.2.0>").unwrap();
        assert_eq!(dotted.node, "warren@host.example.com");
        assert_eq!(
            (dotted.creation, dotted.connection, dotted.channel),
            (1, 2, 0)
        );
        for bad in [
            "127.0.0.1:5000 -> 127.0.0.1:5672",
            "<warren@n1.1.2>",
            "<warren@n1.1.2.x>",
            "<warren@n1.1..2>",
            "warren@n1.1.2.3",
            "<1.2.3>",
        ] {
            assert_eq!(Pid::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_live_as_long_as_their_registration() {
        let r = registry();
        let (tx, _rx) = mpsc::unbounded_channel();
        let a = r.register(info(1, 40001), tx.clone(), Arc::default());
        let b = r.register(info(2, 40002), tx, Arc::default());
        let ids: Vec<u64> = r.list().iter().map(|c| c.info.id).collect();
        assert_eq!(ids, [1, 2]);
        assert!(r.by_pid(&r.pid(2, 0)).is_some());
        assert!(
            r.by_pid(&r.pid(2, 1)).is_none(),
            "a channel is no connection"
        );
        let stale = Pid {
            creation: 76,
            ..r.pid(2, 0)
        };
        assert!(r.by_pid(&stale).is_none(), "a pid of an earlier run");
        assert_eq!(r.by_name("127.0.0.1:40001 -> 127.0.0.1:5672").len(), 1);
        drop(a);
        let ids: Vec<u64> = r.list().iter().map(|c| c.info.id).collect();
        assert_eq!(ids, [2]);
        assert!(r.by_name("127.0.0.1:40001 -> 127.0.0.1:5672").is_empty());
        b.set_channels(3);
        b.set_published();
        let listed = r.list().pop().unwrap();
        assert_eq!(listed.channels(), 3);
        assert_eq!(listed.state(false), "running");
        assert_eq!(listed.state(true), "blocked");
        b.set_closing();
        assert_eq!(listed.state(true), "closing");
        drop(b);
        assert!(r.list().is_empty());
    }

    #[test]
    fn counts_follow_vhost_user_and_channels() {
        let r = registry();
        let (tx, _rx) = mpsc::unbounded_channel();
        let a = r.register(info(1, 40001), tx.clone(), Arc::default());
        let b = r.register(
            ConnectionInfo {
                vhost: "other".into(),
                ..info(2, 40002)
            },
            tx.clone(),
            Arc::default(),
        );
        let _c = r.register(
            ConnectionInfo {
                user: "ys".into(),
                ..info(3, 40003)
            },
            tx,
            Arc::default(),
        );
        a.set_channels(2);
        b.set_channels(5);
        let guest = LimitCounts {
            vhost_connections: 2,
            user_connections: 2,
            user_channels: 7,
        };
        assert_eq!(r.counts("/", "guest"), guest);
        drop(b);
        let mut total = r.counts("/", "guest");
        assert_eq!(total.user_channels, 2);
        total += r.counts("other", "ys");
        assert_eq!(
            total,
            LimitCounts {
                vhost_connections: 2,
                user_connections: 2,
                user_channels: 2
            }
        );
    }

    #[test]
    fn close_and_channel_requests_reach_the_connection_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = registry();
            let (tx, mut rx) = mpsc::unbounded_channel();
            let reg = r.register(info(5, 40005), tx, Arc::default());
            let task = tokio::spawn(async move {
                let mut closed = None;
                while let Some(msg) = rx.recv().await {
                    match msg {
                        ConnControl::Close { reason } => closed = Some(reason),
                        ConnControl::Channels { reply } => {
                            let _ = reply.send(vec![ChannelInfo {
                                number: 1,
                                ..ChannelInfo::default()
                            }]);
                        }
                    }
                }
                closed
            });
            let conn = r.by_pid(&r.pid(5, 0)).unwrap();
            let channels = conn.channel_infos(Duration::from_secs(5)).await.unwrap();
            assert_eq!(channels.len(), 1);
            assert!(conn.close("maintenance"));
            drop(conn);
            drop(reg);
            assert!(r.list().is_empty());
            // The registry held the only sender: the task sees its inbox end.
            assert_eq!(task.await.unwrap().as_deref(), Some("maintenance"));
        });
    }

    #[test]
    fn a_task_that_does_not_answer_yields_none_within_the_wait() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = registry();
            let (tx, rx) = mpsc::unbounded_channel();
            let _reg = r.register(info(6, 40006), tx, Arc::default());
            let conn = r.list().pop().unwrap();
            // (No tokio test-util here to pause time: a short real wait.)
            assert!(conn
                .channel_infos(Duration::from_millis(50))
                .await
                .is_none());
            drop(rx);
            assert!(!conn.close("gone"), "a gone task is reported");
            assert!(conn.channel_infos(Duration::from_secs(60)).await.is_none());
        });
    }

    #[test]
    fn concurrent_registrations_and_drops_leave_exactly_the_live_ones() {
        let r = registry();
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let (tx, _rx) = mpsc::unbounded_channel();
                    let mut kept = Vec::new();
                    for i in 0..200u64 {
                        let id = t * 1000 + i;
                        let reg = r.register(info(id, 1), tx.clone(), Arc::default());
                        // Listing while others register and drop must not deadlock.
                        let _ = r.list();
                        if i % 2 == 0 {
                            kept.push(reg);
                        }
                    }
                    kept
                })
            })
            .collect();
        let kept: Vec<Registration> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let mut want: Vec<u64> = kept.iter().map(|k| k.entry.info.id).collect();
        want.sort_unstable();
        let listed: Vec<u64> = r.list().iter().map(|c| c.info.id).collect();
        assert_eq!(listed, want);
        drop(kept);
        assert!(r.list().is_empty());
    }
}
