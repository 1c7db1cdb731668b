//! The management API's one way into the node: the admin interface warrenctl uses
//! ([`AdminHandler`]), its commands sent by name as warrenctl sends them, their answers
//! read back as JSON and their refusals turned into RabbitMQ's HTTP errors.

use std::sync::Arc;

use serde_json::Value;

use super::auth::{Permission, User};
use super::reply::Reply;
use crate::cluster::{AdminHandler, CommandOutcome, CommandRequest};

/// What the node tells the API at start.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Users that may sign in from loopback only (the node's `loopback_users`).
    pub loopback_users: Vec<String>,
}

/// The node's admin interface, as the handlers use it.
pub(super) struct Api {
    pub admin: Arc<dyn AdminHandler>,
    settings: Settings,
}

/// How the new object commands (`declare_queue`, `publish`, ...) refuse: the AMQP reply
/// code as exit code, so 404 is a missing object and 403 a refusal of access.
pub(super) fn amqp_refusal(outcome: &CommandOutcome) -> Reply {
    match outcome.exit_code {
        404 => Reply::not_found(),
        403 => Reply::not_authorised("Access refused."),
        500 | 541 => Reply::internal(outcome.error.as_str()),
        _ => Reply::bad_request(outcome.error.as_str()),
    }
}

impl Api {
    pub fn new(admin: Arc<dyn AdminHandler>, settings: Settings) -> Api {
        Api { admin, settings }
    }

    /// Run one command; `Err` only when the node cannot run commands (its app is
    /// stopped).
    pub async fn command(
        &self,
        command: &str,
        vhost: &str,
        args: Vec<String>,
        flags: Vec<String>,
    ) -> Result<CommandOutcome, Reply> {
        let request = CommandRequest {
            command: command.into(),
            args,
            vhost: vhost.into(),
            flags,
        };
        self.admin
            .command(request)
            .await
            .map_err(Reply::unavailable)
    }

    /// Run a command whose refusals are `refusal`'s to answer; its JSON on success
    /// (`null` when it answers none).
    pub async fn run(
        &self,
        command: &str,
        vhost: &str,
        args: Vec<String>,
        refusal: impl FnOnce(&CommandOutcome) -> Reply,
    ) -> Result<Value, Reply> {
        self.run_flags(command, vhost, args, Vec::new(), refusal)
            .await
    }

    pub async fn run_flags(
        &self,
        command: &str,
        vhost: &str,
        args: Vec<String>,
        flags: Vec<String>,
        refusal: impl FnOnce(&CommandOutcome) -> Reply,
    ) -> Result<Value, Reply> {
        let outcome = self.command(command, vhost, args, flags).await?;
        if outcome.exit_code != 0 {
            return Err(refusal(&outcome));
        }
        if outcome.json.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&outcome.json)
            .map_err(|e| Reply::internal(format!("{command} answered bad JSON: {e}")))
    }

    /// A list command's rows (a refusal is answered 400 with its text).
    pub async fn rows(
        &self,
        command: &str,
        vhost: &str,
        args: Vec<String>,
    ) -> Result<Vec<Value>, Reply> {
        match self
            .run(command, vhost, args, |o| {
                Reply::bad_request(o.error.as_str())
            })
            .await?
        {
            Value::Array(rows) => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }

    pub async fn password_ok(&self, user: &str, password: &str) -> Result<bool, Reply> {
        let outcome = self
            .command(
                "authenticate_user",
                "/",
                vec![user.into(), password.into()],
                Vec::new(),
            )
            .await?;
        Ok(outcome.exit_code == 0)
    }

    pub fn loopback_only(&self, user: &str) -> bool {
        self.settings.loopback_users.iter().any(|u| u == user)
    }

    /// Every user: name and tags.
    pub async fn users(&self) -> Result<Vec<(String, Vec<String>)>, Reply> {
        Ok(self
            .rows("list_users", "/", Vec::new())
            .await?
            .into_iter()
            .map(|u| {
                let tags = u["tags"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (u["user"].as_str().unwrap_or_default().to_owned(), tags)
            })
            .collect())
    }

    /// A user with its tags and permissions.
    pub async fn user(&self, name: &str) -> Result<User, Reply> {
        let tags = self
            .users()
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, tags)| tags)
            .ok_or_else(Reply::not_found)?;
        let permissions = self
            .rows("list_user_permissions", "/", vec![name.into()])
            .await?
            .iter()
            .map(|p| {
                let text = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                Permission {
                    vhost: text("vhost"),
                    configure: text("configure"),
                    write: text("write"),
                    read: text("read"),
                }
            })
            .collect();
        Ok(User {
            name: name.into(),
            tags,
            permissions,
        })
    }

    pub async fn vhosts(&self) -> Result<Vec<String>, Reply> {
        Ok(self
            .rows("list_vhosts", "/", Vec::new())
            .await?
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect())
    }

    pub async fn vhost_exists(&self, vhost: &str) -> Result<bool, Reply> {
        Ok(self.vhosts().await?.iter().any(|v| v == vhost))
    }

    /// The vhosts whose objects `user` sees in lists, or just `only` (when it sees it).
    pub async fn visible_vhosts(
        &self,
        user: &User,
        only: Option<&str>,
    ) -> Result<Vec<String>, Reply> {
        let mut vhosts = self.vhosts().await?;
        vhosts.retain(|v| (user.is_admin() || user.sees(v)) && only.is_none_or(|o| o == v));
        Ok(vhosts)
    }

    /// The JSON text of a per-vhost list command's rows, one array a vhost `user` sees
    /// (or of just `only`), as the node wrote it.
    pub async fn row_texts_in(
        &self,
        command: &str,
        user: &User,
        only: Option<&str>,
    ) -> Result<Vec<String>, Reply> {
        let mut texts = Vec::new();
        for vhost in self.visible_vhosts(user, only).await? {
            let outcome = self
                .command(command, &vhost, Vec::new(), Vec::new())
                .await?;
            if outcome.exit_code != 0 {
                return Err(Reply::bad_request(outcome.error.as_str()));
            }
            if !outcome.json.is_empty() {
                texts.push(outcome.json);
            }
        }
        Ok(texts)
    }

    /// Rows of a per-vhost list command over the vhosts `user` sees (or one of them).
    pub async fn rows_in(
        &self,
        command: &str,
        user: &User,
        only: Option<&str>,
    ) -> Result<Vec<Value>, Reply> {
        let mut rows = Vec::new();
        for vhost in self.visible_vhosts(user, only).await? {
            rows.extend(self.rows(command, &vhost, Vec::new()).await?);
        }
        Ok(rows)
    }
}
