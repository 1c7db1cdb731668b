//! The disk alarm, as RabbitMQ's `disk_free_limit`: when free space on the data dir's
//! file system falls below the limit, publishing connections get `connection.blocked`
//! ("low on disk") and are no longer read from, `status` lists the alarm; when space
//! comes back they are unblocked and what they published is taken and confirmed. The
//! node's data lives on a 64 MiB tmpfs this test mounts (the suite runs as root), so
//! filling it is exact and disturbs nothing else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::amqp::durable;
use common::cluster::warrenctl;
use common::{free_port, run, Server};
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// A tmpfs mounted for the test, unmounted when dropped (also on a panic).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs for the disk alarm test failed (the suite needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn ctl_json(server: &Server, args: &[&str]) -> serde_json::Value {
    let out = warrenctl(
        &server.data_dir.join("cluster_secret"),
        server.cluster_port,
        args,
    );
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn alarms(server: &Server) -> serde_json::Value {
    ctl_json(server, &["status", "--formatter", "json"])["alarms"].clone()
}

/// The state `list_connections` shows of the node's one connection.
fn state(server: &Server) -> String {
    let listed = ctl_json(
        server,
        &["list_connections", "state", "--formatter", "json"],
    );
    listed[0]["state"].as_str().unwrap_or_default().to_owned()
}

/// Poll `check` every 100 ms for up to 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A persistent publish to `disk-q`; the returned confirm resolves when the broker
/// answers it.
async fn publish(ch: &lapin::Channel) -> lapin::PublisherConfirm {
    ch.basic_publish(
        "".into(),
        "disk-q".into(),
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
    .expect("publish")
}

#[test]
fn the_disk_alarm_blocks_publishers_until_space_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().join("fs");
    let _fs = Tmpfs::mount(&mount, "64m");
    let data = mount.join("data");
    let server = Server::start_on_ports(
        &data,
        free_port(),
        free_port(),
        &["--disk-free-limit", "32000000"],
    );
    let filler = mount.join("filler");
    let port = server.port;
    run(Duration::from_secs(90), "disk alarm", async {
        let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2F");
        let conn = Connection::connect(&uri, ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare("disk-q".into(), durable(), FieldTable::default())
            .await
            .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        publish(&ch)
            .await
            .await
            .expect("confirmed before the alarm");
        assert_eq!(alarms(&server), serde_json::json!([]));

        // 40 MB of 64 MiB used: free space falls below the 32 MB limit.
        std::fs::write(&filler, vec![7u8; 40_000_000]).unwrap();
        eventually("the disk alarm", || {
            alarms(&server)
                == serde_json::json!([{"type": "resource_limit", "resource": "disk", "node": "warren@localhost"}])
        })
        .await;
        let text = String::from_utf8(
            warrenctl(
                &server.data_dir.join("cluster_secret"),
                server.cluster_port,
                &["status"],
            )
            .stdout,
        )
        .unwrap();
        assert!(
            text.contains("Alarms\n\nFree disk space alarm on node warren@localhost\n"),
            "{text}"
        );
        eventually("the publisher blocked", || state(&server) == "blocked").await;
        let held = tokio::time::timeout(Duration::from_millis(1500), publish(&ch).await).await;
        assert!(
            held.is_err(),
            "a publish went through under the disk alarm: {held:?}"
        );

        // Space back: unblocked, and the held publish is taken and confirmed.
        std::fs::remove_file(&filler).unwrap();
        eventually("the alarm cleared", || {
            alarms(&server) == serde_json::json!([])
        })
        .await;
        eventually("the publisher unblocked", || state(&server) == "running").await;
        ch.wait_for_confirms()
            .await
            .expect("confirms after the alarm");
        let mut consumer = ch
            .basic_consume(
                "disk-q".into(),
                "c".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        for i in 0..2 {
            tokio::time::timeout(Duration::from_secs(10), consumer.next())
                .await
                .unwrap_or_else(|_| panic!("message {i} not delivered"))
                .expect("a delivery")
                .expect("delivery ok");
        }
        conn.close(200, "bye".into()).await.unwrap();
    });
    drop(server);
}
