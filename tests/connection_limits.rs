//! Vhost and user limits on connections and channels, counted over the whole cluster as
//! RabbitMQ 3.10.8 counts them (texts measured against it): `max-connections` of a vhost
//! and of a user refuse `connection.open` with 530, a user's `max-channels` closes the
//! connection that opens one channel too many; clients of every node count.

mod common;

use std::time::Duration;

use common::amqp::refusal;
use common::cluster::Cluster;
use common::{run, Server};
use lapin::{Connection, ConnectionProperties};

fn uri(port: u16, user: &str, vhost: &str) -> String {
    format!("amqp://{user}:{user}pw@127.0.0.1:{port}/{vhost}")
}

async fn connect(port: u16, user: &str, vhost: &str) -> Result<Connection, lapin::Error> {
    Connection::connect(&uri(port, user, vhost), ConnectionProperties::default()).await
}

fn vhost_refused(vhost: &str, user: &str, max: u32) -> (u16, String) {
    (
        530,
        format!("NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}': connection limit ({max}) is reached"),
    )
}

fn user_refused(user: &str, max: u32) -> (u16, String) {
    (
        530,
        format!(
            "NOT_ALLOWED - connection refused for user '{user}': user connection limit ({max}) is reached"
        ),
    )
}

/// Wait until every node lists what `args` lists on node 1 after a change: a limit
/// is written through the metadata leader and applied by each node soon after.
fn settled(c: &Cluster, args: &[&str], want: &str) {
    settled_when(c, args, want, |listed| listed.contains(want));
}

/// [`settled`] with a test of the listing; `want` names it in the failure.
fn settled_when(c: &Cluster, args: &[&str], want: &str, done: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for i in 0..3 {
        loop {
            let listed = c.ctl_ok(i, args);
            if done(&listed) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {} still lists {listed:?} for {args:?}, want {want:?}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn connection_and_channel_limits_count_the_clients_of_every_node() {
    let c = Cluster::joined();
    for i in 0..3 {
        c.ctl_ok(i, &["await_startup"]);
    }
    // Set up through node 2, as an operator would on any node.
    c.ctl_ok(1, &["add_vhost", "limv"]);
    for user in ["lu", "lw"] {
        c.ctl_ok(1, &["add_user", user, &format!("{user}pw")]);
        for vhost in ["/", "limv"] {
            c.ctl_ok(1, &["set_permissions", "-p", vhost, user, ".*", ".*", ".*"]);
        }
    }
    c.ctl_ok(
        1,
        &["set_vhost_limits", "-p", "limv", r#"{"max-connections":2}"#],
    );
    c.ctl_ok(
        1,
        &[
            "set_user_limits",
            "lu",
            r#"{"max-connections":3,"max-channels":2}"#,
        ],
    );
    settled(
        &c,
        &["list_vhost_limits", "-p", "limv"],
        r#"{"max-connections":2}"#,
    );
    settled(
        &c,
        &["list_user_limits", "--user", "lu"],
        r#""max-channels":2"#,
    );
    let ports: Vec<u16> = (0..3).map(|i| c.server(i).port).collect();
    run(
        Duration::from_secs(120),
        "connection and channel limits",
        async {
            // The vhost limit: one connection on node 1, one on node 2, the third
            // (node 3) is refused; another user counts against the vhost too.
            let a = connect(ports[0], "lw", "limv").await.expect("first");
            let b = connect(ports[1], "lu", "limv").await.expect("second");
            assert_eq!(
                refusal(connect(ports[2], "lw", "limv").await),
                vhost_refused("limv", "lw", 2)
            );
            // Other vhosts are not limited by it.
            let other = connect(ports[2], "lw", "%2F").await.expect("vhost /");
            // One connection closed: room for one more.
            a.close(200, "bye".into()).await.unwrap();
            let a = connect(ports[2], "lw", "limv").await.expect("room again");

            // The user limit: lu has `b` on node 2; two more anywhere, then refused.
            let c1 = connect(ports[0], "lu", "%2F").await.expect("lu 2");
            let c2 = connect(ports[2], "lu", "%2F").await.expect("lu 3");
            assert_eq!(
                refusal(connect(ports[0], "lu", "%2F").await),
                user_refused("lu", 3)
            );

            // max-channels 2: one channel on node 1, one on node 3, and a third on any
            // node closes that connection.
            let _ch1 = c1.create_channel().await.unwrap();
            let _ch2 = c2.create_channel().await.unwrap();
            assert_eq!(
                refusal(b.create_channel().await),
                (
                    530,
                    "NOT_ALLOWED - number of channels opened for user 'lu' has reached the maximum allowed user limit of (2)".to_string()
                )
            );
            assert!(
                !b.status().connected(),
                "the connection is closed, not the channel"
            );
            // Other users open channels freely.
            other.create_channel().await.expect("lw's channel");
            a.create_channel().await.expect("lw's channel in limv");
            c1.close(200, "bye".into()).await.unwrap();
            c2.close(200, "bye".into()).await.unwrap();
        },
    );

    // Cleared limits no longer count; a limit of 0 refuses every connection.
    c.ctl_ok(2, &["clear_user_limits", "lu", "all"]);
    c.ctl_ok(
        2,
        &["set_vhost_limits", "-p", "limv", r#"{"max-connections":0}"#],
    );
    settled(
        &c,
        &["list_vhost_limits", "-p", "limv"],
        r#"{"max-connections":0}"#,
    );
    settled_when(&c, &["list_user_limits", "--user", "lu"], "none", |l| {
        !l.contains("max-")
    });
    run(Duration::from_secs(60), "limits changed", async {
        let mut held = Vec::new();
        for i in 0..4 {
            let conn = connect(ports[i % 3], "lu", "%2F")
                .await
                .expect("no user limit");
            conn.create_channel().await.unwrap();
            conn.create_channel().await.unwrap();
            held.push(conn);
        }
        assert_eq!(
            refusal(connect(ports[0], "lu", "limv").await),
            vhost_refused("limv", "lu", 0)
        );
    });
    c.ctl_ok(0, &["clear_vhost_limits", "-p", "limv"]);
    settled_when(&c, &["list_vhost_limits", "-p", "limv"], "none", |l| {
        !l.contains("max-")
    });
    run(Duration::from_secs(60), "limits cleared", async {
        connect(ports[0], "lu", "limv")
            .await
            .expect("no vhost limit");
    });
}

#[test]
fn the_node_s_max_connections_and_handshake_timeout() {
    let server = Server::start_with(&["--max-connections", "2", "--handshake-timeout", "500"]);
    let port = server.port;
    run(Duration::from_secs(60), "node limits", async {
        let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2F");
        let props = ConnectionProperties::default;
        let a = Connection::connect(&uri, props()).await.expect("first");
        let _b = Connection::connect(&uri, props()).await.expect("second");
        assert_eq!(
            refusal(Connection::connect(&uri, props()).await),
            (
                530,
                "NOT_ALLOWED - connection refused: node connection limit (2) is reached".into()
            )
        );
        a.close(200, "bye".into()).await.unwrap();
        let _c = Connection::connect(&uri, props())
            .await
            .expect("room after a close");

        // A client that connects and says nothing is let go after the handshake timeout.
        let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
        )
        .await
        .expect("the socket is closed within 5 s");
        assert_eq!(read.ok(), Some(0), "closed without a word");
    });
}
