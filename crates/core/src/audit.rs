//! The audit log: one entry per management action (who, what, when, from where),
//! written in the same transaction as the change it describes.

use crate::secret::{WalletId, WalletKeyId};
use crate::timestamp::Timestamp;

/// Who did a management action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A call to the wallet API with this wallet API key.
    WalletKey(WalletKeyId),
    /// The dashboard, in a session signed in with this wallet API key.
    Session(WalletKeyId),
    /// The operator, with the `spendgate` command on the store (no key involved).
    Operator,
}

impl Actor {
    /// Its stored and shown form: a kind and, but for the operator, a wallet key id.
    pub fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Actor::WalletKey(id) => ("wallet_key", Some(id.as_str())),
            Actor::Session(id) => ("dashboard_session", Some(id.as_str())),
            Actor::Operator => ("operator", None),
        }
    }

    pub fn from_parts(kind: &str, id: Option<&str>) -> Option<Actor> {
        match (kind, id) {
            ("wallet_key", Some(id)) => Some(Actor::WalletKey(WalletKeyId::new(id))),
            ("dashboard_session", Some(id)) => Some(Actor::Session(WalletKeyId::new(id))),
            ("operator", None) => Some(Actor::Operator),
            _ => None,
        }
    }
}

macro_rules! actions {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// What was done.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Action {
            $($variant),*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name),*
                }
            }

            pub fn parse(s: &str) -> Option<Action> {
                match s {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    WalletCreated = "wallet.created",
    WalletKeyCreated = "wallet_key.created",
    WalletKeyRevoked = "wallet_key.revoked",
    SpendKeyCreated = "spend_key.created",
    SpendKeyUpdated = "spend_key.updated",
    SpendKeyRotated = "spend_key.rotated",
    SpendKeyRevoked = "spend_key.revoked",
    WebhookCreated = "webhook.created",
    WebhookDeleted = "webhook.deleted",
    SessionCreated = "dashboard_session.created",
    SessionRevoked = "dashboard_session.revoked",
}

/// One entry of a wallet's audit log. Append only: never changed, never deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: crate::secret::AuditId,
    pub wallet_id: WalletId,
    pub actor: Actor,
    pub action: Action,
    /// The id of what was acted on (a wallet, wallet key or spend key).
    pub target_id: String,
    /// What changed, as a JSON object: for a creation the settings it was created with,
    /// for a change `{field: {"from": old, "to": new}}`. Never a secret.
    pub changes: serde_json::Value,
    /// The address the request came from (none for the operator's command).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
}

/// `{field: {"from": old, "to": new}}` for each field of `after` whose value differs
/// from `before`'s.
pub fn diff(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return serde_json::json!({ "from": before, "to": after });
    };
    let null = serde_json::Value::Null;
    let changed = after
        .iter()
        .filter(|(k, v)| before.get(*k).unwrap_or(&null) != *v)
        .map(|(k, v)| (k.clone(), serde_json::json!({ "from": before.get(k).unwrap_or(&null), "to": v })))
        .collect();
    serde_json::Value::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_and_actors_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Action::parse("spend_key.deleted"), None);
        for actor in
            [Actor::WalletKey(WalletKeyId::new("wk_1")), Actor::Session(WalletKeyId::new("wk_2")), Actor::Operator]
        {
            let (kind, id) = actor.parts();
            assert_eq!(Actor::from_parts(kind, id), Some(actor.clone()));
        }
        assert_eq!(Actor::from_parts("wallet_key", None), None);
        assert_eq!(Actor::from_parts("root", None), None);
    }

    #[test]
    fn diff_lists_only_changed_fields() {
        let before = json!({"name": "a", "spend_limit": null, "status": "active"});
        let after = json!({"name": "b", "spend_limit": {"amount": "5.00", "cycle": "daily"}, "status": "active"});
        assert_eq!(
            diff(&before, &after),
            json!({
                "name": {"from": "a", "to": "b"},
                "spend_limit": {"from": null, "to": {"amount": "5.00", "cycle": "daily"}},
            })
        );
        assert_eq!(diff(&after, &after), json!({}));
    }
}
