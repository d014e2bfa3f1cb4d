//! Where a configuration comes from: the TOML file, then the environment over it, then the
//! secret files the result names.
//!
//! Precedence, lowest first: built-in defaults, the file, `MODGATE_…` environment variables.
//! A variable names a key by its path with `__` between the parts, case-insensitive:
//! `MODGATE_SERVER__LISTEN=0.0.0.0:8080` sets `server.listen`, `MODGATE_APPS__0__SECRET=…` the
//! first `[[apps]]` entry's `secret` (an index one past the last entry adds an entry).
//! Variables without `__` are not configuration. A value is read as a TOML value (`8080`, `true`,
//! `[10, 30]`, `"text"`) where the key takes one of that type, and as a string otherwise, so
//! `MODGATE_APPS__0__SECRET=12345` is the string `"12345"`.
//!
//! Every secret key (`apps[].secret`, `push_token`, `encoding_aes_key`, `admin.token`,
//! `tokens.key`, `state.redis_password`) may instead be given as `<key>_file`: the path of a
//! file holding it (a mounted container secret); one trailing newline is not part of it.

use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};

use super::{Config, ConfigError, ConfigErrors, RawConfig};

/// The prefix of configuration variables.
pub const ENV_PREFIX: &str = "MODGATE_";

/// The keys that hold secrets, by section (`apps` for each `[[apps]]` entry).
const SECRET_KEYS: &[(&str, &[&str])] = &[
    ("apps", &["secret", "push_token", "encoding_aes_key"]),
    ("admin", &["token"]),
    ("tokens", &["key"]),
    ("state", &["redis_password"]),
];

/// The configuration from `text` (a file's contents), with the configuration variables among
/// `env` applied over it and secret files read, validated. Every problem is reported, those of
/// the variables and secret files first.
pub fn layered(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let mut table: Table = toml::from_str(text).map_err(|e| one("(file)", e.to_string()))?;
    let mut errors = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
        .collect();
    // Apps added by index must be added in order (`…__2__…` before `…__10__…`).
    vars.sort_by_cached_key(|(name, _)| {
        name.split("__")
            .map(|p| match p.parse::<usize>() {
                Ok(i) => (0, i, String::new()),
                Err(_) => (1, 0, p.to_ascii_lowercase()),
            })
            .collect::<Vec<_>>()
    });
    for (name, value) in &vars {
        if let Err(message) = apply(&mut table, name, value) {
            errors.push(ConfigError {
                key: format!("(environment) {name}"),
                message,
            });
        }
    }
    read_secret_files(&mut table, &mut errors);
    let validated = match RawConfig::deserialize(Value::Table(table)) {
        Ok(raw) => raw.validate(),
        Err(e) => {
            let origin = if vars.is_empty() {
                "(file)"
            } else {
                "(file and environment)"
            };
            Err(one(origin, e.to_string()))
        }
    };
    match validated {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(more) => {
            errors.extend(more.0);
            Err(ConfigErrors(errors))
        }
    }
}

/// [`layered`] over a file (none: an empty one) and this process's environment.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| one("(file)", format!("cannot read {}: {e}", p.display())))?,
        None => String::new(),
    };
    // Variables that are not valid Unicode cannot name a key; they are not ours.
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    layered(&text, env)
}

fn one(key: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        key: key.to_owned(),
        message: message.trim_end().replace('\n', "\n    "),
    }])
}

/// One part of a key's path.
#[derive(Debug, Clone)]
enum Part {
    Key(String),
    Index(usize),
}

fn parts(name: &str) -> Result<Vec<Part>, String> {
    let path = &name[ENV_PREFIX.len()..];
    let parts: Vec<Part> = path
        .split("__")
        .map(|p| match p.parse::<usize>() {
            Ok(i) => Part::Index(i),
            Err(_) => Part::Key(p.to_ascii_lowercase()),
        })
        .collect();
    if parts
        .iter()
        .any(|p| matches!(p, Part::Key(k) if k.is_empty()))
    {
        return Err("an empty part in the key's path".into());
    }
    if matches!(parts.first(), Some(Part::Index(_))) {
        return Err("a path starts with a section name".into());
    }
    Ok(parts)
}

/// Sets the key `name` names to `raw`.
fn apply(table: &mut Table, name: &str, raw: &str) -> Result<(), String> {
    let parts = parts(name)?;
    // A secret's file is a path, read after the variables are applied.
    let value = if is_secret_file(&parts) {
        Value::String(raw.to_owned())
    } else {
        typed(&parts, raw)?
    };
    let (last, parents) = parts.split_last().ok_or("no key")?;
    let mut at = table;
    let mut parts = parents.iter().peekable();
    while let Some(part) = parts.next() {
        let Part::Key(key) = part else {
            return Err("an index must follow a list's name".into());
        };
        if let Some(Part::Index(i)) = parts.peek() {
            parts.next();
            let list = at
                .entry(key.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(list) = list else {
                return Err(format!("{key} is not a list"));
            };
            if *i == list.len() {
                list.push(Value::Table(Table::new()));
            }
            let len = list.len();
            let Some(Value::Table(entry)) = list.get_mut(*i) else {
                return Err(format!(
                    "{key} has {len} entries: index {i} is past the next one"
                ));
            };
            at = entry;
        } else {
            let section = at
                .entry(key.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            let Value::Table(section) = section else {
                return Err(format!("{key} is not a section"));
            };
            at = section;
        }
    }
    match last {
        Part::Key(key) => {
            at.insert(key.clone(), value);
            Ok(())
        }
        Part::Index(_) => Err("a path ends with a key name".into()),
    }
}

/// Whether `parts` name a secret's `_file` key (`admin.token_file`, `apps[0].secret_file`).
fn is_secret_file(parts: &[Part]) -> bool {
    let (Some(Part::Key(section)), Some(Part::Key(last))) = (parts.first(), parts.last()) else {
        return false;
    };
    let Some(stem) = last.strip_suffix("_file") else {
        return false;
    };
    SECRET_KEYS
        .iter()
        .any(|(s, keys)| s == section && keys.contains(&stem))
}

/// `raw` as a TOML value where the key takes one of that type, else as a string; an error when
/// the key takes neither (or is no key), so the variable is named and the rest still checked.
fn typed(parts: &[Part], raw: &str) -> Result<Value, String> {
    // Which type the key takes is the raw configuration's to say: try each form alone at that
    // path.
    let fits = |v: &Value| RawConfig::deserialize(Value::Table(alone(parts, v))).map(|_| ());
    let text = Value::String(raw.to_owned());
    let literal = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_str());
    if let Some(v) = literal {
        match fits(&v) {
            Ok(()) => return Ok(v),
            Err(e) => return fits(&text).map(|()| text).map_err(|_| e.to_string()),
        }
    }
    fits(&text).map(|()| text).map_err(|e| e.to_string())
}

/// A table holding only `value` at `parts` (a list of one entry for each index).
fn alone(parts: &[Part], value: &Value) -> Table {
    let mut v = value.clone();
    for part in parts.iter().rev() {
        v = match part {
            Part::Index(_) => match v {
                Value::Table(t) => Value::Array(vec![Value::Table(t)]),
                other => other,
            },
            Part::Key(k) => {
                let mut t = Table::new();
                t.insert(k.clone(), v);
                Value::Table(t)
            }
        };
    }
    match v {
        Value::Table(t) => t,
        _ => Table::new(),
    }
}

/// Replaces each `<secret>_file` key with the secret it names.
fn read_secret_files(table: &mut Table, errors: &mut Vec<ConfigError>) {
    // `[[admin.tokens]]` entries hold a token each.
    if let Some(Value::Table(admin)) = table.get_mut("admin")
        && let Some(Value::Array(list)) = admin.get_mut("tokens")
    {
        for (i, entry) in list.iter_mut().enumerate() {
            if let Value::Table(t) = entry {
                read_in(t, &format!("admin.tokens[{i}]"), &["token"], errors);
            }
        }
    }
    for (section, keys) in SECRET_KEYS {
        match table.get_mut(*section) {
            Some(Value::Table(t)) => read_in(t, section, keys, errors),
            Some(Value::Array(list)) => {
                for (i, entry) in list.iter_mut().enumerate() {
                    if let Value::Table(t) = entry {
                        read_in(t, &format!("{section}[{i}]"), keys, errors);
                    }
                }
            }
            _ => {}
        }
    }
}

fn read_in(table: &mut Table, at: &str, keys: &[&str], errors: &mut Vec<ConfigError>) {
    for key in keys {
        let file_key = format!("{key}_file");
        let Some(path) = table.remove(&file_key) else {
            continue;
        };
        let name = format!("{at}.{file_key}");
        let Value::String(path) = path else {
            errors.push(ConfigError {
                key: name,
                message: "expected a file path".into(),
            });
            continue;
        };
        if table.contains_key(*key) {
            errors.push(ConfigError {
                key: name,
                message: format!("{at}.{key} is set too: give one of them"),
            });
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let secret = text
                    .strip_suffix('\n')
                    .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
                if secret.is_empty() {
                    errors.push(ConfigError {
                        key: name,
                        message: format!("{path} is empty"),
                    });
                } else {
                    table.insert((*key).to_owned(), Value::String(secret.to_owned()));
                }
            }
            Err(e) => errors.push(ConfigError {
                key: name,
                message: format!("cannot read {path}: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn config(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        layered(text, env(vars))
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let c = config(
            "[server]\nlisten = \"127.0.0.1:1\"\nmax_connections = 10\n",
            &[
                ("MODGATE_SERVER__LISTEN", "127.0.0.1:2"),
                ("MODGATE_limits__text_per_minute", "7"),
                ("MODGATE_MEDIA__PUSH_RETRY_SECS", "[1, 2.5]"),
                ("MODGATE_LIMITS__ENFORCE", "false"),
                ("MODGATE_NOT_CONFIG", "ignored: no __ in the name"),
                ("OTHER__THING", "ignored: not our prefix"),
            ],
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:2".parse().unwrap());
        assert_eq!(c.server.max_connections.get(), 10, "the file's value stays");
        assert_eq!(c.limits.text_per_minute.get(), 7);
        assert!(!c.limits.enforce);
        assert_eq!(c.media.push_retry.len(), 2);
    }

    #[test]
    fn values_that_look_like_numbers_stay_strings_where_the_key_is_a_string() {
        let file = "[[apps]]\nappid = \"wx0000000000000001\"\nsecret = \"from the file\"\n";
        let c = config(
            file,
            &[
                (
                    "MODGATE_APPS__0__SECRET",
                    "12345678901234567890123456789012",
                ),
                ("MODGATE_APPS__1__APPID", "wx0000000000000002"),
                (
                    "MODGATE_APPS__1__SECRET",
                    "abcdefabcdefabcdefabcdefabcdefab",
                ),
                ("MODGATE_APPS__1__TEXT_PER_MINUTE", "9"),
                ("MODGATE_STATE__REDIS_PREFIX", "12345"),
                ("MODGATE_STATE__DATA_DIR", "true"),
            ],
        )
        .unwrap();
        assert_eq!(c.apps.len(), 2);
        assert_eq!(
            c.apps[0].secret.expose(),
            "12345678901234567890123456789012"
        );
        assert_eq!(c.apps[1].appid, "wx0000000000000002");
        assert_eq!(c.apps[1].text_per_minute.map(|n| n.get()), Some(9));
        // An integer and a boolean, read as text where the key is text.
        assert_eq!(c.state.redis_prefix, "12345");
        assert_eq!(c.state.data_dir, std::path::PathBuf::from("true"));
    }

    #[test]
    fn apps_added_by_index_are_added_in_numeric_order() {
        let vars: Vec<(String, String)> = (0..12)
            .flat_map(|i| {
                [
                    (format!("MODGATE_APPS__{i}__APPID"), format!("wx{i:016x}")),
                    (
                        format!("MODGATE_APPS__{i}__SECRET"),
                        "0123456789abcdef0123456789abcdef".to_owned(),
                    ),
                ]
            })
            .collect();
        let c = layered("", vars).unwrap();
        let appids: Vec<String> = c.apps.iter().map(|a| a.appid.clone()).collect();
        let want: Vec<String> = (0..12).map(|i| format!("wx{i:016x}")).collect();
        assert_eq!(appids, want);
    }

    #[test]
    fn bad_variables_are_named_in_the_errors() {
        let errors = config(
            "[admin]\nlisten = \"nope\"\n",
            &[
                ("MODGATE_APPS__3__SECRET", "x"),
                ("MODGATE_SERVER____LISTEN", "x"),
            ],
        )
        .unwrap_err();
        let text = errors.to_string();
        // The file's own problems are reported beside the variables'.
        assert!(text.contains("admin.listen"), "{text}");
        assert!(
            text.contains("(environment) MODGATE_APPS__3__SECRET"),
            "{text}"
        );
        assert!(text.contains("index 3 is past the next one"), "{text}");
        assert!(
            text.contains("(environment) MODGATE_SERVER____LISTEN"),
            "{text}"
        );
        // A misspelt key is refused as in the file.
        let errors = config("", &[("MODGATE_SERVER__LISTN", "127.0.0.1:1")]).unwrap_err();
        assert!(
            errors.to_string().contains("unknown field `listn`"),
            "{errors}"
        );
    }

    #[test]
    fn secrets_are_read_from_files() {
        let dir = std::env::temp_dir().join(format!("modgate-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("admin-token");
        std::fs::write(&token, "s3cret-token\n").unwrap();
        let app_secret = dir.join("app-secret");
        std::fs::write(&app_secret, "0123456789abcdef0123456789abcdef").unwrap();
        let password = dir.join("redis-password");
        std::fs::write(&password, "p@ss word\r\n").unwrap();
        let file = format!(
            "[admin]\ntoken_file = {:?}\n[[admin.tokens]]\nname = \"alice\"\nrole = \"reviewer\"\ntoken_file = {:?}\n[[apps]]\nappid = \"wx0000000000000001\"\n",
            token.display(),
            app_secret.display()
        );
        let c = config(
            &file,
            &[
                (
                    "MODGATE_APPS__0__SECRET_FILE",
                    &app_secret.display().to_string(),
                ),
                (
                    "MODGATE_STATE__REDIS_PASSWORD_FILE",
                    &password.display().to_string(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.admin.token.unwrap().expose(), "s3cret-token");
        assert_eq!(
            c.admin.tokens[0].token.expose(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            c.apps[0].secret.expose(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(c.state.redis_url.password(), Some("p%40ss%20word"));

        // Both forms, a missing file and an empty one are errors, all reported at once.
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let file = format!(
            "[admin]\ntoken = \"x\"\ntoken_file = {:?}\n[tokens]\nkey_file = \"/nonexistent/key\"\n[state]\nredis_password_file = {:?}\n",
            token.display(),
            empty.display()
        );
        let errors = config(&file, &[]).unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "admin.token_file",
                "tokens.key_file",
                "state.redis_password_file"
            ],
            "{errors}"
        );
        assert!(errors.0[1].message.contains("cannot read /nonexistent/key"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
