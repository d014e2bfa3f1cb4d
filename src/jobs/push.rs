//! The verdict push of SPEC §4: body (JSON or XML, plain or AES safe mode) and the query string
//! (`signature`, `timestamp`, `nonce`, and in safe mode `encrypt_type`, `msg_signature`).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use sha1::{Digest, Sha1};

use crate::config::{PushFormat, PushMode};
use crate::engine::Suggest;
use crate::media::verdict::{DetailItem, MediaVerdict, ResultItem};

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// WeChat pads to 32-byte blocks (PKCS#7 with a 32-byte block size).
const PAD_BLOCK: usize = 32;

/// `hex(sha1(concat(sort(parts))))`: `signature` over token, timestamp and nonce, and
/// `msg_signature` over those and the `Encrypt` value.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for p in sorted {
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(40), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// AES-256-CBC of `random ‖ len(msg) as u32 BE ‖ msg ‖ appid`, padded to 32 bytes, IV = the
/// first 16 key bytes; base64.
pub fn encrypt(key: &[u8; 32], random: &[u8; 16], msg: &[u8], appid: &str) -> String {
    let mut plain = Vec::with_capacity(16 + 4 + msg.len() + appid.len() + PAD_BLOCK);
    plain.extend_from_slice(random);
    plain.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
    plain.extend_from_slice(msg);
    plain.extend_from_slice(appid.as_bytes());
    let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
    plain.resize(plain.len() + pad, pad as u8);
    let len = plain.len();
    let iv: [u8; 16] = key[..16].try_into().unwrap_or([0; 16]);
    let cipher = Encryptor::new(key.into(), &iv.into());
    // The length is a multiple of the block size by construction, so this cannot fail.
    cipher
        .encrypt_padded_mut::<NoPadding>(&mut plain, len)
        .map(|c| B64.encode(c))
        .unwrap_or_default()
}

/// What an `Encrypt` value holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Decrypted {
    pub random: [u8; 16],
    pub msg: Vec<u8>,
    pub appid: String,
}

/// The inverse of [`encrypt`]; `None` when the value is not a well-formed safe-mode message.
pub fn decrypt(key: &[u8; 32], encrypted: &str) -> Option<Decrypted> {
    let mut data = B64.decode(encrypted).ok()?;
    let iv: [u8; 16] = key[..16].try_into().ok()?;
    let plain = Decryptor::new(key.into(), &iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut data)
        .ok()?;
    let pad = usize::from(*plain.last()?);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return None;
    }
    let plain = &plain[..plain.len() - pad];
    let random: [u8; 16] = plain.get(..16)?.try_into().ok()?;
    let len = u32::from_be_bytes(plain.get(16..20)?.try_into().ok()?) as usize;
    let msg = plain.get(20..20 + len)?.to_vec();
    let appid = String::from_utf8(plain.get(20 + len..)?.to_vec()).ok()?;
    Some(Decrypted { random, msg, appid })
}

/// The `wxa_media_check` event of one job.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "ToUserName")]
    pub to_user: &'a str,
    #[serde(rename = "FromUserName")]
    pub from_user: &'a str,
    #[serde(rename = "CreateTime")]
    pub create_time: u64,
    #[serde(rename = "MsgType")]
    pub msg_type: &'static str,
    #[serde(rename = "Event")]
    pub event: &'static str,
    pub appid: &'a str,
    pub trace_id: &'a str,
    /// What the event says of the verdict, in the shape of the API version the job was
    /// submitted with.
    #[serde(flatten)]
    pub body: EventBody<'a>,
}

/// The verdict in a push: v2's `detail` and `result`, or v1's `isrisky` and `status_code`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EventBody<'a> {
    V2 {
        version: u8,
        /// `content_model` first, then the verdict's own items.
        detail: Vec<DetailItem>,
        errcode: i32,
        errmsg: &'a str,
        result: &'a ResultItem,
    },
    V1 {
        /// 1 when the file is risky.
        isrisky: u8,
        extra_info_json: &'static str,
        /// 0, or the errcode as an unsigned 32-bit number (a file that could not be fetched:
        /// -1008, 4294966288).
        status_code: u32,
    },
}

impl<'a> Event<'a> {
    /// The v2 event.
    pub fn new(
        to_user: &'a str,
        from_user: &'a str,
        create_time: u64,
        appid: &'a str,
        trace_id: &'a str,
        verdict: &'a MediaVerdict,
    ) -> Self {
        let body = EventBody::V2 {
            version: 2,
            detail: std::iter::once(verdict.content_model())
                .chain(verdict.detail.iter().cloned())
                .collect(),
            errcode: verdict.errcode,
            errmsg: &verdict.errmsg,
            result: &verdict.result,
        };
        Event::with(to_user, from_user, create_time, appid, trace_id, body)
    }

    /// The v1 event (SPEC §12): no openid, `isrisky` and `status_code` for the verdict.
    pub fn v1(
        to_user: &'a str,
        create_time: u64,
        appid: &'a str,
        trace_id: &'a str,
        verdict: &'a MediaVerdict,
    ) -> Self {
        let body = EventBody::V1 {
            isrisky: u8::from(verdict.errcode == 0 && verdict.result.suggest == Suggest::Risky),
            extra_info_json: "",
            // Two's complement, as the platform writes a negative errcode here.
            status_code: verdict.errcode as u32,
        };
        Event::with(to_user, "", create_time, appid, trace_id, body)
    }

    fn with(
        to_user: &'a str,
        from_user: &'a str,
        create_time: u64,
        appid: &'a str,
        trace_id: &'a str,
        body: EventBody<'a>,
    ) -> Self {
        Event {
            to_user,
            from_user,
            create_time,
            msg_type: "event",
            event: "wxa_media_check",
            appid,
            trace_id,
            body,
        }
    }

    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The XML form: CDATA strings, numbers bare, one `<detail>` element per item.
    pub fn xml(&self) -> Vec<u8> {
        let mut x = String::with_capacity(512);
        x.push_str("<xml>");
        cdata(&mut x, "ToUserName", self.to_user);
        cdata(&mut x, "FromUserName", self.from_user);
        number(&mut x, "CreateTime", self.create_time);
        cdata(&mut x, "MsgType", self.msg_type);
        cdata(&mut x, "Event", self.event);
        cdata(&mut x, "appid", self.appid);
        cdata(&mut x, "trace_id", self.trace_id);
        match &self.body {
            EventBody::V2 {
                version,
                detail,
                errcode,
                errmsg,
                result,
            } => {
                number(&mut x, "version", version);
                for d in detail {
                    x.push_str("<detail>");
                    cdata(&mut x, "strategy", &d.strategy);
                    number(&mut x, "errcode", d.errcode);
                    cdata(&mut x, "suggest", d.suggest.as_str());
                    number(&mut x, "label", d.label);
                    number(&mut x, "prob", d.prob);
                    x.push_str("</detail>");
                }
                number(&mut x, "errcode", errcode);
                cdata(&mut x, "errmsg", errmsg);
                x.push_str("<result>");
                cdata(&mut x, "suggest", result.suggest.as_str());
                number(&mut x, "label", result.label);
                x.push_str("</result>");
            }
            EventBody::V1 {
                isrisky,
                extra_info_json,
                status_code,
            } => {
                number(&mut x, "isrisky", isrisky);
                cdata(&mut x, "extra_info_json", extra_info_json);
                number(&mut x, "status_code", status_code);
            }
        }
        x.push_str("</xml>");
        x.into_bytes()
    }
}

fn cdata(x: &mut String, tag: &str, value: &str) {
    x.push('<');
    x.push_str(tag);
    x.push_str("><![CDATA[");
    // "]]>" cannot appear inside one CDATA section: split it across two.
    x.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
    x.push_str("]]></");
    x.push_str(tag);
    x.push('>');
}

fn number(x: &mut String, tag: &str, value: impl std::fmt::Display) {
    use std::fmt::Write;
    let _ = write!(x, "<{tag}>{value}</{tag}>");
}

/// A push ready to send: the body, its content type, and the query string.
#[derive(Debug, Clone)]
pub struct Signed {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub query: String,
}

/// How one app wants its pushes.
pub struct Recipe<'a> {
    pub format: PushFormat,
    pub mode: PushMode,
    pub token: &'a str,
    pub aes_key: Option<&'a [u8; 32]>,
    pub appid: &'a str,
    pub original_id: &'a str,
}

/// Formats, encrypts (in safe mode) and signs one event.
pub fn sign(
    recipe: &Recipe<'_>,
    event: &Event<'_>,
    timestamp: u64,
    nonce: &str,
    random: &[u8; 16],
) -> Signed {
    let ts = timestamp.to_string();
    let (plain, content_type) = match recipe.format {
        PushFormat::Json => (event.json(), "application/json"),
        PushFormat::Xml => (event.xml(), "text/xml"),
    };
    let signature = signature(&[recipe.token, &ts, nonce]);
    let mut query = format!("signature={signature}&timestamp={ts}&nonce={nonce}");
    // The platform names the user in the query too (SPEC §12), so a receiver can route a push
    // before it parses (or, in safe mode, decrypts) the body.
    if !event.from_user.is_empty() {
        query.push_str("&openid=");
        query.extend(url::form_urlencoded::byte_serialize(
            event.from_user.as_bytes(),
        ));
    }
    let body = match (recipe.mode, recipe.aes_key) {
        (mode, Some(key)) if mode.encrypts() => {
            let encrypted = encrypt(key, random, &plain, recipe.appid);
            let msg_signature = signature_of(recipe.token, &ts, nonce, &encrypted);
            query.push_str("&encrypt_type=aes&msg_signature=");
            query.push_str(&msg_signature);
            match (mode, recipe.format) {
                (PushMode::Compat, PushFormat::Json) => {
                    // The event's own fields as plain mode writes them, then `Encrypt` (of
                    // those same fields): the object's closing brace gives way to one more
                    // member.
                    let mut body = plain;
                    if body.last() == Some(&b'}') {
                        body.pop();
                        body.extend_from_slice(b",\"Encrypt\":");
                        body.extend_from_slice(&serde_json::to_vec(&encrypted).unwrap_or_default());
                        body.push(b'}');
                    }
                    body
                }
                (PushMode::Compat, PushFormat::Xml) => {
                    let mut x = String::from_utf8(plain).unwrap_or_default();
                    let closing = x.len().saturating_sub("</xml>".len());
                    x.truncate(closing);
                    cdata(&mut x, "Encrypt", &encrypted);
                    x.push_str("</xml>");
                    x.into_bytes()
                }
                (_, PushFormat::Json) => serde_json::to_vec(&serde_json::json!({
                    "ToUserName": recipe.original_id,
                    "Encrypt": encrypted,
                }))
                .unwrap_or_default(),
                (_, PushFormat::Xml) => {
                    let mut x = String::from("<xml>");
                    cdata(&mut x, "ToUserName", recipe.original_id);
                    cdata(&mut x, "Encrypt", &encrypted);
                    x.push_str("</xml>");
                    x.into_bytes()
                }
            }
        }
        _ => plain,
    };
    Signed {
        body,
        content_type,
        query,
    }
}

fn signature_of(token: &str, ts: &str, nonce: &str, encrypted: &str) -> String {
    signature(&[token, ts, nonce, encrypted])
}

#[cfg(test)]
mod tests {
    use super::*;

    const AES_KEY_TEXT: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const ENCRYPT: &str = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=";
    const MESSAGE: &str = r#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#;

    fn key() -> [u8; 32] {
        B64.decode(format!("{AES_KEY_TEXT}="))
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn appendix_signatures() {
        assert_eq!(
            signature(&["AAAAA", "1714036504", "1514711492"]),
            "f464b24fc39322e44b38aa78f5edd27bd1441696"
        );
        assert_eq!(
            signature(&["AAAAA", "1714037059", "486452656"]),
            "899cf89e464efb63f54ddac96b0a0a235f53aa78"
        );
        assert_eq!(
            signature(&["AAAAA", "1714112445", "415670741", ENCRYPT]),
            "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
        );
        assert_eq!(
            signature(&["AAAAA", "1714112445", "415670741"]),
            "6c5c811b55cc85e0e1b54100749188c20beb3f5d"
        );
    }

    #[test]
    fn appendix_aes_message_decrypts_and_encrypts_back() {
        let d = decrypt(&key(), ENCRYPT).unwrap();
        assert_eq!(&d.random, b"a8eedb185eb2fecf");
        assert_eq!(d.msg.len(), 167);
        assert_eq!(std::str::from_utf8(&d.msg).unwrap(), MESSAGE);
        assert_eq!(d.appid, "wxba5fad812f8e6fb9");
        // Same random bytes in, the platform's exact ciphertext out.
        assert_eq!(
            encrypt(
                &key(),
                b"a8eedb185eb2fecf",
                MESSAGE.as_bytes(),
                "wxba5fad812f8e6fb9"
            ),
            ENCRYPT
        );
    }

    fn verdict() -> MediaVerdict {
        MediaVerdict {
            errcode: 0,
            errmsg: "ok".into(),
            detail: vec![DetailItem {
                strategy: "format".into(),
                errcode: 0,
                suggest: crate::engine::Suggest::Pass,
                label: 100,
                prob: 100,
            }],
            result: ResultItem {
                suggest: crate::engine::Suggest::Pass,
                label: 100,
            },
            media: None,
            strategies: Vec::new(),
        }
    }

    /// The v1 event: `isrisky` 1 only for a risky verdict, `status_code` the errcode as an
    /// unsigned 32-bit number, in JSON and XML alike.
    #[test]
    fn v1_events_carry_isrisky_and_status_code() {
        let mut risky = verdict();
        risky.result = ResultItem {
            suggest: Suggest::Risky,
            label: 20002,
        };
        let e = Event::v1("gh_x", 5, "wx1", "t-5", &risky);
        let json: serde_json::Value = serde_json::from_slice(&e.json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ToUserName":"gh_x","FromUserName":"","CreateTime":5,"MsgType":"event",
                "Event":"wxa_media_check","appid":"wx1","trace_id":"t-5","isrisky":1,
                "extra_info_json":"","status_code":0})
        );
        let mut review = verdict();
        review.result.suggest = Suggest::Review;
        let e = Event::v1("gh_x", 5, "wx1", "t-6", &review);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&e.json()).unwrap()["isrisky"],
            0
        );
        let failed = MediaVerdict {
            errcode: -1008,
            errmsg: "media download failed".into(),
            detail: Vec::new(),
            result: ResultItem {
                suggest: Suggest::Review,
                label: 100,
            },
            media: None,
            strategies: Vec::new(),
        };
        let e = Event::v1("gh_x", 5, "wx1", "t-7", &failed);
        let xml = String::from_utf8(e.xml()).unwrap();
        assert!(
            xml.ends_with(
                "<trace_id><![CDATA[t-7]]></trace_id><isrisky>0</isrisky>\
                 <extra_info_json><![CDATA[]]></extra_info_json><status_code>4294966288</status_code></xml>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn json_and_xml_events_carry_every_field() {
        let v = verdict();
        let e = Event::new(
            "gh_0123456789ab",
            "oUser",
            1_732_780_000,
            "wx0123456789abcdef",
            "t-1",
            &v,
        );
        let json: serde_json::Value = serde_json::from_slice(&e.json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ToUserName":"gh_0123456789ab","FromUserName":"oUser","CreateTime":1_732_780_000u64,
                "MsgType":"event","Event":"wxa_media_check","appid":"wx0123456789abcdef","trace_id":"t-1","version":2,
                "detail":[{"strategy":"content_model","errcode":0,"suggest":"pass","label":100,"prob":90},
                    {"strategy":"format","errcode":0,"suggest":"pass","label":100,"prob":100}],
                "errcode":0,"errmsg":"ok","result":{"suggest":"pass","label":100}})
        );
        let xml = String::from_utf8(e.xml()).unwrap();
        assert_eq!(
            xml,
            "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>\
             <CreateTime>1732780000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[wxa_media_check]]></Event>\
             <appid><![CDATA[wx0123456789abcdef]]></appid><trace_id><![CDATA[t-1]]></trace_id><version>2</version>\
             <detail><strategy><![CDATA[content_model]]></strategy><errcode>0</errcode><suggest><![CDATA[pass]]></suggest><label>100</label><prob>90</prob></detail>\
             <detail><strategy><![CDATA[format]]></strategy><errcode>0</errcode><suggest><![CDATA[pass]]></suggest><label>100</label><prob>100</prob></detail>\
             <errcode>0</errcode><errmsg><![CDATA[ok]]></errmsg><result><suggest><![CDATA[pass]]></suggest><label>100</label></result></xml>"
        );
        let mut s = String::new();
        cdata(&mut s, "a", "x]]>y");
        assert_eq!(s, "<a><![CDATA[x]]]]><![CDATA[>y]]></a>");
    }

    /// `e` signed in an encrypting mode for the app of the appendix vectors, with its query
    /// parsed.
    fn encrypted_push(
        mode: PushMode,
        format: PushFormat,
        e: &Event<'_>,
        k: &[u8; 32],
    ) -> (Signed, std::collections::HashMap<String, String>) {
        let recipe = Recipe {
            format,
            mode,
            token: "AAAAA",
            aes_key: Some(k),
            appid: "wxba5fad812f8e6fb9",
            original_id: "gh_x",
        };
        let s = sign(&recipe, e, 1714112445, "415670741", &[7; 16]);
        let q = url::form_urlencoded::parse(s.query.as_bytes())
            .into_owned()
            .collect();
        (s, q)
    }

    #[test]
    fn safe_mode_pushes_are_signed_over_the_ciphertext() {
        let v = verdict();
        let e = Event::new("gh_x", "oUser", 5, "wxba5fad812f8e6fb9", "t-2", &v);
        let k = key();
        for format in [PushFormat::Json, PushFormat::Xml] {
            let (s, q) = encrypted_push(PushMode::Aes, format, &e, &k);
            assert_eq!(q["signature"], "6c5c811b55cc85e0e1b54100749188c20beb3f5d");
            assert_eq!(q["openid"], "oUser");
            assert_eq!(q["encrypt_type"], "aes");
            let encrypted = match format {
                PushFormat::Json => {
                    let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
                    assert_eq!(body["ToUserName"], "gh_x");
                    body["Encrypt"].as_str().unwrap().to_owned()
                }
                PushFormat::Xml => {
                    let body = String::from_utf8(s.body.clone()).unwrap();
                    let start = body.find("<Encrypt><![CDATA[").unwrap() + 18;
                    let end = body[start..].find("]]>").unwrap() + start;
                    body[start..end].to_owned()
                }
            };
            assert_eq!(
                q["msg_signature"],
                signature(&["AAAAA", "1714112445", "415670741", &encrypted])
            );
            let d = decrypt(&k, &encrypted).unwrap();
            assert_eq!(d.appid, "wxba5fad812f8e6fb9");
            let plain = match format {
                PushFormat::Json => e.json(),
                PushFormat::Xml => e.xml(),
            };
            assert_eq!(d.msg, plain);
        }
    }

    #[test]
    fn plain_pushes_carry_no_encryption_parameters() {
        let v = verdict();
        let e = Event::new("gh_x", "oUser", 5, "wx1", "t-3", &v);
        let recipe = Recipe {
            format: PushFormat::Json,
            mode: PushMode::Plain,
            token: "AAAAA",
            aes_key: None,
            appid: "wx1",
            original_id: "gh_x",
        };
        let s = sign(&recipe, &e, 1714037059, "486452656", &[0; 16]);
        assert_eq!(
            s.query,
            "signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656\
             &openid=oUser"
        );
        assert_eq!(s.body, e.json());
        assert_eq!(s.content_type, "application/json");
    }

    /// Compatible mode: the plain fields and `Encrypt` (of those same fields) in one body,
    /// signed as safe mode is, in JSON and in XML.
    #[test]
    fn compat_pushes_carry_the_plain_fields_and_encrypt() {
        let v = verdict();
        let e = Event::new("gh_x", "oUser", 5, "wxba5fad812f8e6fb9", "t-4", &v);
        let k = key();
        for format in [PushFormat::Json, PushFormat::Xml] {
            let (s, q) = encrypted_push(PushMode::Compat, format, &e, &k);
            assert_eq!(q["encrypt_type"], "aes");
            let (plain_fields, encrypted) = match format {
                PushFormat::Json => {
                    let mut body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
                    let encrypted = body["Encrypt"].as_str().unwrap().to_owned();
                    body.as_object_mut().unwrap().remove("Encrypt");
                    // The plain event's members, in its order, then `Encrypt`.
                    let plain = e.json();
                    let open = &plain[..plain.len() - 1];
                    assert!(s.body.starts_with(open) && s.body[open.len()] == b',');
                    assert_eq!(
                        body,
                        serde_json::from_slice::<serde_json::Value>(&plain).unwrap()
                    );
                    (plain, encrypted)
                }
                PushFormat::Xml => {
                    let body = String::from_utf8(s.body.clone()).unwrap();
                    let start = body.find("<Encrypt><![CDATA[").unwrap();
                    let end = body[start..].find("</Encrypt>").unwrap() + start + 10;
                    let encrypted = body[start + 18..end - 13].to_owned();
                    let without = format!("{}{}", &body[..start], &body[end..]);
                    (without.into_bytes(), encrypted)
                }
            };
            let plain = match format {
                PushFormat::Json => e.json(),
                PushFormat::Xml => e.xml(),
            };
            assert_eq!(
                plain_fields, plain,
                "{format:?}: the plain fields as plain mode sends them"
            );
            assert_eq!(decrypt(&k, &encrypted).unwrap().msg, plain);
            assert_eq!(
                q["msg_signature"],
                signature(&["AAAAA", "1714112445", "415670741", &encrypted])
            );
        }
    }
}
