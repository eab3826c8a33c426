//! The Gorilla chunk codec: delta-of-delta timestamps and XOR-encoded floats, laid out as the
//! Prometheus TSDB's `chunkenc.XORChunk` lays them out, so its compression figures are ours.
//!
//! Bytes in, samples out, no I/O. Values are compared and stored as raw bits, so
//! every NaN payload (Prometheus's stale marker `0x7ff0000000000002` included) round-trips
//! exactly.
//!
//! Layout: 2 bytes big-endian sample count, then a bit stream:
//! - sample 0: timestamp as a zig-zag varint, value as 64 raw bits;
//! - sample 1: timestamp delta as an unsigned varint, value XOR-encoded;
//! - sample n: delta-of-delta in one of five buckets (`0`, `10`+14 bits, `110`+17 bits,
//!   `1110`+20 bits, `1111`+64 bits), value XOR-encoded.
//!
//! XOR value: `0` = same bits as before; `10` = meaningful bits fit the previous
//! leading/trailing window; `11` + 5 bits leading zeros + 6 bits length + the bits.

use super::bits::{BitReader, BitWriter, ChunkError};

/// Most samples an XOR chunk holds. Its first byte (the count's high byte) thereby stays
/// below [`super::decimal::TAG`], which marks the other layout.
pub const MAX_SAMPLES: usize = 0xfeff;
/// An open chunk being appended to. Appends must be in strictly increasing timestamp order;
/// the head checks that before calling.
#[derive(Debug, Clone)]
pub struct XorAppender {
    w: BitWriter,
    count: u16,
    t: i64,
    t_delta: u64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    pub fn new() -> Self {
        XorAppender {
            // A full chunk of a moving counter is ~150-250 bytes; growing from 2 reallocates
            // six times per chunk.
            w: BitWriter { bytes: Self::fresh_bytes(), acc: 0, pending: 0 },
            count: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            // 0xff marks "no window yet" so the first XOR always writes a new one.
            leading: 0xff,
            trailing: 0,
        }
    }

    fn fresh_bytes() -> Vec<u8> {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&[0, 0]);
        bytes
    }

    /// Re-opens an encoded chunk for appending (a head loaded from a checkpoint).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChunkError> {
        let mut app = XorAppender::new();
        for s in XorIter::new(bytes)? {
            let (t, v) = s?;
            app.append(t, v);
        }
        Ok(app)
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_full(&self) -> bool {
        usize::from(self.count) >= MAX_SAMPLES
    }

    /// The last timestamp appended; meaningless while empty.
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// The last value's bits; meaningless while empty.
    pub fn last_v_bits(&self) -> u64 {
        self.v
    }

    /// Encoded size so far.
    pub fn byte_len(&self) -> usize {
        self.w.len()
    }

    /// The encoded chunk as it stands (a copy: the count and the last bits are only put in
    /// bytes here).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.w.len());
        self.write_to(&mut out);
        out
    }

    /// Appends the encoded chunk as it stands ([`Self::byte_len`] bytes) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.w.copy_to(out);
        out[start..start + 2].copy_from_slice(&self.count.to_be_bytes());
    }

    pub fn append(&mut self, t: i64, v: f64) {
        let vbits = v.to_bits();
        match self.count {
            0 => {
                self.w.write_varint(t);
                self.w.write_bits(vbits, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t) as u64;
                self.w.write_uvarint(delta);
                self.write_xor(vbits);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t) as u64;
                self.w.write_dod(delta.wrapping_sub(self.t_delta) as i64);
                self.write_xor(vbits);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = vbits;
        self.count += 1;
    }

    fn write_xor(&mut self, vbits: u64) {
        let delta = vbits ^ self.v;
        if delta == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        let mut leading = delta.leading_zeros() as u8;
        let trailing = delta.trailing_zeros() as u8;
        // 5 bits hold the leading count.
        if leading >= 32 {
            leading = 31;
        }
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            self.w.write_bits(delta >> self.trailing, 64 - self.leading - self.trailing);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.write_bit(true);
        self.w.write_bits(u64::from(leading), 5);
        let sig = 64 - leading - trailing;
        // 64 significant bits do not fit 6 bits; 0 stands for 64 (sig is never 0 here).
        self.w.write_bits(u64::from(sig & 63), 6);
        self.w.write_bits(delta >> trailing, sig);
    }
}

/// Iterates an encoded chunk's samples in order. A chunk that ends early yields an error
/// after the samples it did hold.
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: usize,
    read: usize,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    failed: bool,
}

impl<'a> XorIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        if bytes.len() < 2 {
            return Err(ChunkError::NoHeader);
        }
        let total = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        Ok(XorIter {
            r: BitReader { bytes: &bytes[2..], pos: 0 },
            total,
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
            failed: false,
        })
    }

    /// Samples the header promises.
    pub fn total(&self) -> usize {
        self.total
    }

    fn next_sample(&mut self) -> Option<(i64, f64)> {
        match self.read {
            0 => {
                self.t = self.r.read_varint()?;
                self.v = self.r.read_bits(64)?;
            }
            1 => {
                self.t_delta = self.r.read_uvarint()? as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_xor()?;
            }
            _ => {
                let dod = self.r.read_dod()?;
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_xor()?;
            }
        }
        self.read += 1;
        Some((self.t, f64::from_bits(self.v)))
    }

    fn read_xor(&mut self) -> Option<()> {
        if !self.r.read_bit()? {
            return Some(());
        }
        if self.r.read_bit()? {
            self.leading = self.r.read_bits(5)? as u8;
            let mut sig = self.r.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            self.trailing = 64u8.checked_sub(self.leading + sig)?;
        }
        let sig = 64 - self.leading - self.trailing;
        let bits = self.r.read_bits(sig)?;
        self.v ^= bits << self.trailing;
        Some(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.read >= self.total {
            return None;
        }
        match self.next_sample() {
            Some(s) => Some(Ok(s)),
            None => {
                self.failed = true;
                Some(Err(ChunkError::Truncated { decoded: self.read, expected: self.total }))
            }
        }
    }
}
/// Encodes samples (strictly increasing timestamps) into one chunk.
pub fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut app = XorAppender::new();
    for &(t, v) in samples {
        app.append(t, v);
    }
    app.bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chunk::decode;

    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
        s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    fn round_trip(samples: &[(i64, f64)]) {
        let enc = encode(samples);
        let dec = decode(&enc).expect("decodes");
        assert_eq!(bits(&dec), bits(samples));
        // Re-opening for append must continue the same stream.
        let mut reopened = XorAppender::from_bytes(&enc).expect("reopens");
        reopened.append(samples.last().map_or(0, |s| s.0) + 15_000, 1.5);
        let mut expect = samples.to_vec();
        expect.push((samples.last().map_or(0, |s| s.0) + 15_000, 1.5));
        assert_eq!(bits(&decode(&reopened.bytes()).unwrap()), bits(&expect));
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
        round_trip(&[(1_700_000_000_000, 42.0)]);
        round_trip(&[(-5, -0.0)]);
    }

    #[test]
    fn special_floats_are_bit_exact() {
        let stale = f64::from_bits(STALE_NAN);
        let other_nan = f64::from_bits(0x7ff8_0000_0000_0001);
        let s = vec![
            (1000, 1.0),
            (2000, stale),
            (3000, f64::INFINITY),
            (4000, f64::NEG_INFINITY),
            (5000, other_nan),
            (6000, stale),
            (7000, -0.0),
            (8000, 0.0),
            (9000, f64::MIN_POSITIVE),
            (10000, f64::MAX),
            (11000, 5e-324),
        ];
        round_trip(&s);
        let dec = decode(&encode(&s)).unwrap();
        assert_eq!(dec[1].1.to_bits(), STALE_NAN);
        assert_eq!(dec[5].1.to_bits(), STALE_NAN);
    }

    #[test]
    fn every_timestamp_bucket_and_extremes() {
        let mut s = vec![(0i64, 0.0)];
        let mut t = 0i64;
        // dod of 0, 14, 17, 20 and 64-bit buckets, both signs, plus bucket edges.
        for step in
            [15_000i64, 15_000, 15_001, 14_999, 8_191, -8_192 + 20_000, 70_000, 600_000, 1 << 40, 1, 1, 2]
        {
            t += step;
            s.push((t, step as f64));
        }
        round_trip(&s);
        let extremes = [(i64::MIN + 1, 1.0), (0, 2.0), (i64::MAX - 1, 3.0)];
        assert_eq!(bits(&decode(&encode(&extremes)).unwrap()), bits(&extremes));
    }

    #[test]
    fn bucket_edges_are_exact() {
        for bits in [14u32, 17, 20] {
            let lim = 1i64 << (bits - 1);
            for dod in [-lim - 1, -lim, -lim + 1, lim - 1, lim, lim + 1] {
                let base = 10_000_000i64;
                let s = vec![(0, 1.0), (base, 2.0), (2 * base + dod, 3.0), (3 * base + dod, 4.0)];
                round_trip(&s);
            }
        }
    }

    #[test]
    fn full_chunk_and_truncation() {
        let s: Vec<(i64, f64)> = (0..MAX_SAMPLES as i64).map(|i| (i * 15_000, (i % 7) as f64)).collect();
        let enc = encode(&s);
        assert_eq!(bits(&decode(&enc).unwrap()), bits(&s));
        // A truncated chunk yields the samples before the cut, then an error.
        let cut = &enc[..enc.len() / 2];
        let got: Vec<_> = XorIter::new(cut).unwrap().collect();
        assert!(matches!(got.last(), Some(Err(ChunkError::Truncated { .. }))));
        let ok: Vec<_> = got.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(bits(&ok), bits(&s[..ok.len()]));
        assert_eq!(decode(&[1]), Err(ChunkError::NoHeader));
    }

    #[test]
    fn regular_series_compress_like_gorilla() {
        // A 15s scrape of a slowly moving counter: ~1-2 bytes per sample.
        let s: Vec<(i64, f64)> = (0..120).map(|i| (1_700_000_000_000 + i * 15_000, (i * 3) as f64)).collect();
        let enc = encode(&s);
        assert!(enc.len() < 120 * 2, "{} bytes", enc.len());
    }

    #[test]
    fn random_round_trips() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let n = rng.usize(0..400);
            let mut t = rng.i64(-1_000_000..1_000_000);
            let mut s = Vec::with_capacity(n);
            for _ in 0..n {
                t += match rng.u8(0..4) {
                    0 => 15_000,
                    1 => rng.i64(1..100),
                    2 => rng.i64(1..10_000_000),
                    _ => rng.i64(1..1 << 40),
                };
                let v = match rng.u8(0..5) {
                    0 => f64::from_bits(rng.u64(..)),
                    1 => rng.f64() * 1e6,
                    2 => (rng.u32(..) % 100) as f64,
                    3 => f64::from_bits(STALE_NAN),
                    _ => s.last().map_or(0.0, |x: &(i64, f64)| x.1),
                };
                s.push((t, v));
            }
            let dec = decode(&encode(&s)).unwrap();
            assert_eq!(bits(&dec), bits(&s));
        }
    }
}
