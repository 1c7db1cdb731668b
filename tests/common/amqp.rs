//! lapin helpers shared by the cluster tests.

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::Server;

pub async fn open(server: &Server) -> (Connection, Channel) {
    let conn = Connection::connect(&server.uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

pub fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

pub fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

pub fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

/// The reply code and text a refused operation got (the channel or connection close).
pub fn refusal<T: std::fmt::Debug>(result: Result<T, lapin::Error>) -> (u16, String) {
    match result {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp) => {
                (amqp.get_id(), amqp.get_message().to_string())
            }
            other => panic!("expected a protocol error, got {other:?}"),
        },
    }
}
