//! AMQP 0-9-1 wire format only: frames, methods, properties, field tables and reply
//! codes. No tasks and no broker state; the codec of methods is amq-protocol's.

mod reply_code;

pub use reply_code::ReplyCode;
