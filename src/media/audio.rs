//! Audio files: the container checked and the duration read, without decoding any audio.
//!
//! mp3, aac (ADTS), flac, ogg (vorbis, opus) and wav are demuxed with symphonia: the file must
//! probe as its format and have a track, and every packet is walked (bounded by the 10 MB
//! fetch cap) when the header does not state the length. AC-3 and WMA, which symphonia does not
//! read, are walked here: AC-3 frame by frame (each sync word, size code and sample rate), WMA
//! through its ASF header objects (file properties and an audio stream).

use std::io::Cursor;

use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::sniff::Format;

/// What the container says.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    pub duration_secs: f64,
}

/// Reads the container; the error says why it is not a valid file of its format.
pub fn probe(bytes: &[u8], format: Format) -> Result<AudioInfo, String> {
    match format {
        Format::Ac3 => ac3(bytes),
        Format::Wma => asf(bytes),
        Format::Mp3 | Format::Aac | Format::Flac | Format::Ogg | Format::Wav => {
            // symphonia 0.5 can panic on crafted input (its ADTS reader subtracts stream
            // positions without checking: found by the `audio_probe` fuzz target); such a file
            // is refused like any other it cannot read.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| demux(bytes, format)))
                .unwrap_or_else(|_| {
                    Err(format!(
                        "not a valid {} file: the demuxer could not read it",
                        format.name()
                    ))
                })
        }
        other => Err(format!("{} is not an audio format", other.name())),
    }
}

fn demux(bytes: &[u8], format: Format) -> Result<AudioInfo, String> {
    let name = format.name();
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(name);
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| format!("not a valid {name} file: {e}"))?;
    let mut reader = probed.format;
    let track = reader
        .default_track()
        .ok_or_else(|| format!("the {name} file has no audio track"))?;
    let (id, params) = (track.id, track.codec_params.clone());
    let time_base = params
        .time_base
        .or_else(|| {
            params
                .sample_rate
                .map(|r| symphonia::core::units::TimeBase::new(1, r))
        })
        .ok_or_else(|| format!("the {name} file states no sample rate"))?;
    let units = match params.n_frames {
        Some(n) if n > 0 => n,
        // No stated length: walk the packets (demuxing only).
        _ => {
            let mut total = 0u64;
            let mut packets = 0u64;
            while let Ok(packet) = reader.next_packet() {
                if packet.track_id() == id {
                    total = total.saturating_add(packet.dur);
                    packets += 1;
                }
            }
            if packets == 0 {
                return Err(format!("the {name} file has no audio packets"));
            }
            total
        }
    };
    let t = time_base.calc_time(units);
    Ok(AudioInfo {
        duration_secs: t.seconds as f64 + t.frac,
    })
}

/// AC-3: a run of sync frames of 1,536 samples each.
fn ac3(b: &[u8]) -> Result<AudioInfo, String> {
    let mut at = 0;
    let mut frames = 0u64;
    let mut rate = 0u32;
    while at + 6 <= b.len() {
        if b[at..at + 2] != [0x0B, 0x77] {
            return Err(format!("broken AC-3 stream: no sync word at byte {at}"));
        }
        let fscod = b[at + 4] >> 6;
        let code = usize::from(b[at + 4] & 0x3F);
        let bsid = b[at + 5] >> 3;
        if code > 37 || fscod == 3 || bsid > 10 {
            return Err(format!("broken AC-3 frame header at byte {at}"));
        }
        // Kbit/s by frame size code pair.
        const KBPS: [u32; 19] = [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640,
        ];
        let kbps = KBPS[code / 2];
        let (sample_rate, words) = match fscod {
            0 => (48_000, kbps * 2),
            1 => (
                44_100,
                kbps * 1000 * 1536 / (44_100 * 16) + (code as u32 & 1),
            ),
            _ => (32_000, kbps * 3),
        };
        if rate != 0 && rate != sample_rate {
            return Err(format!(
                "broken AC-3 stream: the sample rate changes at byte {at}"
            ));
        }
        rate = sample_rate;
        let size = words as usize * 2;
        if at + size > b.len() {
            break; // a truncated last frame
        }
        frames += 1;
        at += size;
    }
    if frames == 0 {
        return Err("not a valid ac3 file: no complete frame".into());
    }
    Ok(AudioInfo {
        duration_secs: frames as f64 * 1536.0 / f64::from(rate),
    })
}

const ASF_HEADER: [u8; 16] = [
    0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C,
];
const ASF_FILE_PROPERTIES: [u8; 16] = [
    0xA1, 0xDC, 0xAB, 0x8C, 0x47, 0xA9, 0xCF, 0x11, 0x8E, 0xE4, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65,
];
const ASF_STREAM_PROPERTIES: [u8; 16] = [
    0x91, 0x07, 0xDC, 0xB7, 0xB7, 0xA9, 0xCF, 0x11, 0x8E, 0xE6, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65,
];
const ASF_AUDIO_MEDIA: [u8; 16] = [
    0x40, 0x9E, 0x69, 0xF8, 0x4D, 0x5B, 0xCF, 0x11, 0xA8, 0xFD, 0x00, 0x80, 0x5F, 0x5C, 0x44, 0x2B,
];

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// WMA: the ASF header's file properties (play duration less preroll) and an audio stream.
fn asf(b: &[u8]) -> Result<AudioInfo, String> {
    let bad = |why: &str| format!("not a valid wma file: {why}");
    if b.get(..16) != Some(&ASF_HEADER[..]) {
        return Err(bad("no ASF header"));
    }
    let header_size = le64(b, 16).ok_or_else(|| bad("truncated header"))? as usize;
    let end = header_size.min(b.len());
    let (mut at, mut duration, mut audio) = (30, None, false);
    // `at` grows by sizes the file states: compared without overflowing.
    while end.checked_sub(at).is_some_and(|left| left >= 24) {
        let guid = &b[at..at + 16];
        let size = le64(b, at + 16).ok_or_else(|| bad("truncated header object"))? as usize;
        if size < 24 {
            return Err(bad("a header object has an impossible size"));
        }
        if guid == ASF_FILE_PROPERTIES {
            let play = le64(b, at + 64).ok_or_else(|| bad("truncated file properties"))?;
            let preroll_ms = le64(b, at + 80).ok_or_else(|| bad("truncated file properties"))?;
            duration = Some((play as f64 / 1e7 - preroll_ms as f64 / 1e3).max(0.0));
        } else if guid == ASF_STREAM_PROPERTIES
            && b.get(at + 24..at + 40) == Some(&ASF_AUDIO_MEDIA[..])
        {
            audio = true;
        }
        at = at.saturating_add(size);
    }
    match (duration, audio) {
        (Some(d), true) => Ok(AudioInfo { duration_secs: d }),
        (None, _) => Err(bad("no file properties")),
        (_, false) => Err(bad("no audio stream")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A mono 16-bit PCM WAV of `secs` seconds of a 440 Hz tone.
    pub(crate) fn wav(secs: f64) -> Vec<u8> {
        let rate = 8000u32;
        let n = (secs * f64::from(rate)) as u32;
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(36 + n * 2).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(n * 2).to_le_bytes());
        for i in 0..n {
            let v = (f64::from(i) * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin();
            out.extend_from_slice(&((v * 12_000.0) as i16).to_le_bytes());
        }
        out
    }

    #[test]
    fn a_synthesised_wav_has_its_duration() {
        let info = probe(&wav(1.25), Format::Wav).unwrap();
        assert!((info.duration_secs - 1.25).abs() < 0.01, "{info:?}");
        let mut truncated = wav(1.0);
        truncated.truncate(20);
        assert!(probe(&truncated, Format::Wav).is_err());
    }

    /// `secs` seconds of a tone encoded by ffmpeg (Debian's package; `scripts/test` installs it).
    pub(crate) fn encoded_by_ffmpeg(ext: &str, secs: f64) -> Vec<u8> {
        let args: &[&str] = match ext {
            "mp3" => &["-c:a", "libmp3lame"],
            "aac" => &["-c:a", "aac", "-f", "adts"],
            "ac3" => &["-c:a", "ac3"],
            "wma" => &["-c:a", "wmav2"],
            "flac" => &["-c:a", "flac"],
            "ogg" => &["-c:a", "libvorbis"],
            "opus" => &["-c:a", "libopus", "-f", "ogg"],
            _ => &["-c:a", "pcm_s16le"],
        };
        let dir = std::env::temp_dir().join(format!("modgate-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("tone-{secs}.{ext}"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:duration={secs}"))
            .args(["-ar", "48000", "-ac", "1"])
            .args(args)
            .arg(&path)
            .status()
            .expect("ffmpeg is needed for the audio tests (scripts/test installs it)");
        assert!(status.success(), "ffmpeg failed for {ext}");
        std::fs::read(&path).unwrap()
    }

    /// Every SPEC format, encoded by ffmpeg, is recognised by its bytes, read as its container,
    /// and has the duration it was made with.
    #[test]
    fn every_audio_format_is_read_with_its_duration() {
        for (ext, format) in [
            ("mp3", Format::Mp3),
            ("aac", Format::Aac),
            ("ac3", Format::Ac3),
            ("wma", Format::Wma),
            ("flac", Format::Flac),
            ("ogg", Format::Ogg),
            ("opus", Format::Ogg),
            ("wav", Format::Wav),
        ] {
            let bytes = encoded_by_ffmpeg(ext, 1.5);
            assert_eq!(super::super::sniff::identify(&bytes), Some(format), "{ext}");
            let info = probe(&bytes, format).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert!(
                (info.duration_secs - 1.5).abs() < 0.15,
                "{ext}: {} s",
                info.duration_secs
            );
        }
    }

    #[test]
    fn broken_ac3_and_wma_are_refused_with_the_reason() {
        let e = probe(&[0x0B, 0x77, 0, 0, 0xFF, 0x40, 0, 0], Format::Ac3).unwrap_err();
        assert!(e.contains("frame header"), "{e}");
        let e = probe(&[0x0B, 0x77, 0, 0, 0x00, 0x40], Format::Ac3).unwrap_err();
        assert!(e.contains("no complete frame"), "{e}");
        let mut asf = ASF_HEADER.to_vec();
        asf.extend_from_slice(&30u64.to_le_bytes());
        asf.extend_from_slice(&[0; 6]);
        assert!(
            probe(&asf, Format::Wma)
                .unwrap_err()
                .contains("no file properties")
        );
        assert!(probe(b"not audio at all", Format::Mp3).is_err());
    }
}
