//! The edits a document of each kind takes: a whole replacement, entries added (an added entry
//! replaces one with the same key), one entry removed. Pure: given the document in force, they
//! build the new one or say why not. The admin API and the review queue's feedback both edit
//! through these, under [`Documents::change`].

use std::sync::Arc;

use super::ChangeError;
use super::change::{Changed, Documents, Draft, Write};
use crate::engine::table::{CustomTable, KeywordEntry, ValidTable};
use crate::media::bank::{Bank, BankEntry};
use crate::risk::{EntryType, ListEntry, RiskLists};

/// A keyword table with `added` merged in.
pub fn keywords_added(
    current: Option<Arc<CustomTable>>,
    added: Vec<KeywordEntry>,
) -> Result<ValidTable, ChangeError> {
    let mut merged: Vec<KeywordEntry> = current
        .map(|t| t.entries())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !added.iter().any(|a| a.keyword == c.keyword))
        .collect();
    merged.extend(added);
    keywords(merged)
}

/// A keyword table without `keyword`.
pub fn keyword_removed(
    current: Option<Arc<CustomTable>>,
    keyword: &str,
) -> Result<ValidTable, ChangeError> {
    let current = current.map(|t| t.entries()).unwrap_or_default();
    if !current.iter().any(|c| c.keyword == keyword) {
        return Err(ChangeError::NotFound("no such keyword in this app's table"));
    }
    keywords(
        current
            .into_iter()
            .filter(|c| c.keyword != keyword)
            .collect(),
    )
}

/// A keyword table of `entries`, validated: compiled while it is stored.
pub fn keywords(entries: Vec<KeywordEntry>) -> Result<ValidTable, ChangeError> {
    CustomTable::validate(entries).map_err(|e| ChangeError::Invalid(e.to_string()))
}

impl From<ValidTable> for Draft<CustomTable> {
    fn from(valid: ValidTable) -> Self {
        Draft::Valid {
            json: valid.json(),
            build: Box::new(move || {
                valid
                    .compile()
                    .map_err(|e| ChangeError::Failed(e.to_string()))
            }),
        }
    }
}

/// A bank with `added` appended (errors name an added entry as its request numbered it).
pub fn bank_added(current: Option<Arc<Bank>>, added: &[BankEntry]) -> Result<Bank, ChangeError> {
    bank(added.to_vec())?;
    let mut all: Vec<BankEntry> = current
        .as_deref()
        .map(|b| b.entries().to_vec())
        .unwrap_or_default();
    all.extend(added.iter().cloned());
    bank(all)
}

/// A bank without the entries of `hash`.
pub fn bank_removed(current: Option<Arc<Bank>>, hash: &str) -> Result<Bank, ChangeError> {
    let now: Vec<BankEntry> = current
        .as_deref()
        .map(|b| b.entries().to_vec())
        .unwrap_or_default();
    let before = now.len();
    let kept: Vec<BankEntry> = now.into_iter().filter(|e| e.hash != hash).collect();
    if kept.len() == before {
        return Err(ChangeError::NotFound("no entry with this hash in the bank"));
    }
    bank(kept)
}

/// A bank of `entries`.
pub fn bank(entries: Vec<BankEntry>) -> Result<Bank, ChangeError> {
    Bank::build(entries).map_err(|e| ChangeError::Invalid(e.to_string()))
}

/// Risk lists with `added` appended.
pub fn lists_added(
    current: Option<Arc<RiskLists>>,
    added: Vec<ListEntry>,
) -> Result<RiskLists, ChangeError> {
    let mut all = current
        .as_deref()
        .map(RiskLists::entries)
        .unwrap_or_default();
    all.extend(added);
    lists(all)
}

/// Risk lists without the entry of `kind` and `value`.
pub fn list_entry_removed(
    current: Option<Arc<RiskLists>>,
    kind: EntryType,
    value: &str,
) -> Result<RiskLists, ChangeError> {
    let now = current
        .as_deref()
        .map(RiskLists::entries)
        .unwrap_or_default();
    let before = now.len();
    let kept: Vec<ListEntry> = now
        .into_iter()
        .filter(|e| !(e.kind == kind && e.value == value))
        .collect();
    if kept.len() == before {
        return Err(ChangeError::NotFound("no such entry in the risk lists"));
    }
    lists(kept)
}

/// Risk lists of `entries`.
pub fn lists(entries: Vec<ListEntry>) -> Result<RiskLists, ChangeError> {
    RiskLists::build(entries).map_err(|e| ChangeError::Invalid(e.to_string()))
}

impl Documents {
    /// Adds keyword entries to an app's table (an entry replaces one with the same keyword).
    pub async fn add_keywords(
        &self,
        appid: &str,
        added: Vec<KeywordEntry>,
    ) -> Result<Changed<CustomTable, ()>, ChangeError> {
        self.change(appid, Write::Edit, move |current| {
            Ok((keywords_added(current, added)?, ()))
        })
        .await
    }

    /// Adds entries to a hash bank (`global` or an app's).
    pub async fn add_bank_entries(
        &self,
        scope: &str,
        added: Vec<BankEntry>,
    ) -> Result<Changed<Bank, ()>, ChangeError> {
        self.change(scope, Write::Edit, move |current| {
            Ok((bank_added(current, &added)?, ()))
        })
        .await
    }
}
