//! The one place that decides how an error reaches the client: `channel.close` for soft
//! errors, `connection.close` for hard ones (RabbitMQ's `map_exception`).

use crate::amqp::ReplyCode;

/// An error at the AMQP edge, carrying RabbitMQ's reply code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    pub code: ReplyCode,
    /// Full reply text, starting with the code's name (`NOT_FOUND - ...`).
    pub text: String,
    /// The method that caused it (class, method), or (0, 0).
    pub method: (u16, u16),
}

impl AmqpError {
    /// `text` without the `NAME - ` prefix; it is added here.
    pub fn new(code: ReplyCode, text: impl std::fmt::Display) -> Self {
        AmqpError {
            code,
            text: format!("{} - {}", code.name(), text),
            method: (0, 0),
        }
    }

    /// An error whose text already carries the prefix (from the metadata machine).
    pub fn prefixed(code: ReplyCode, text: String) -> Self {
        AmqpError {
            code,
            text,
            method: (0, 0),
        }
    }

    pub fn on(mut self, method: (u16, u16)) -> Self {
        if self.method == (0, 0) {
            self.method = method;
        }
        self
    }

    /// Unknown internal failure: logged with its cause, reported as 541.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        AmqpError::new(ReplyCode::InternalError, "internal error")
    }

    /// How the error is delivered.
    pub fn scope(&self) -> Scope {
        if self.code.is_hard() {
            Scope::Connection
        } else {
            Scope::Channel
        }
    }
}

/// What an error closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Channel,
    Connection,
}

pub type AmqpResult<T> = Result<T, AmqpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_and_hard_errors() {
        let e = AmqpError::new(ReplyCode::NotFound, "no queue 'q' in vhost '/'");
        assert_eq!(e.text, "NOT_FOUND - no queue 'q' in vhost '/'");
        assert_eq!(e.scope(), Scope::Channel);
        assert_eq!(
            AmqpError::new(ReplyCode::FrameError, "x").scope(),
            Scope::Connection
        );
        assert_eq!(
            AmqpError::new(ReplyCode::ChannelError, "x").scope(),
            Scope::Connection
        );
        assert_eq!(
            AmqpError::new(ReplyCode::PreconditionFailed, "x").scope(),
            Scope::Channel
        );
    }
}
