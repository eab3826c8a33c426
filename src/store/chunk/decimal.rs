//! The decimal chunk codec, for chunks once they are closed and written to disk. The head
//! appends into XOR chunks (`xor`), which suit any float; most stored values, though, are
//! counters and decimals (`1234`, `0.25`, `812.37`), for which the XOR of two neighbours keeps
//! about as many bits as the whole mantissa's changing part. Written as integers scaled by a
//! power of ten, their deltas take a few bits each (VictoriaMetrics's idea). A chunk is
//! re-encoded this way only when it comes out smaller, and only losslessly: every value is
//! checked to decode to its exact bits, and values that do not (NaN, the stale marker, ±Inf,
//! -0, or a float with more digits than the rest) are kept raw beside the integers.
//!
//! Layout: the byte [`TAG`] (an XOR chunk never starts with it), then one bit stream:
//! - uvarint sample count `n` (≥ 1), zig-zag varint first timestamp, uvarint first delta,
//!   then the `n - 2` zig-zag delta-of-deltas *packed*;
//! - 5 bits scale `k`, zig-zag varint first integer `m0`, the `n - 1` zig-zag deltas of the
//!   integers *packed* (a raw value's slot repeats the previous integer: delta 0);
//! - uvarint raw count, each: uvarint index gap, 64 raw bits.
//!
//! *Packed*: 7 bits width `w`, uvarint exception count, each exception a uvarint index gap and
//! the uvarint number (too wide for `w`: a counter reset, a missed scrape), then every number
//! in `w` bits (0 in an exception's slot). Unlike the XOR chunk's fixed buckets, a scrape
//! jitter of a few milliseconds costs a few bits, not sixteen.
//!
//! Value `i` is `m_i / 10^k` (an exact integer divided by an exact power of ten, so the
//! division is correctly rounded and the same everywhere), unless a raw value stands there.

use super::bits::{BitReader, BitWriter, ChunkError};
use crate::store::encoding::{unzigzag, zigzag};

/// First byte of a decimal chunk.
pub const TAG: u8 = 0xff;

/// Highest power of ten tried; 10^15 and below are exact in an f64.
const MAX_SCALE: usize = 15;
/// Integers stay within f64's exact range.
const MAX_INT: f64 = 9_007_199_254_740_992.0;
/// A chunk with more raw values than 1 in this many is left as XOR.
const MAX_RAW_SHARE: usize = 8;

const POW10: [f64; MAX_SCALE + 1] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// `v` as `m / 10^k`, if that division gives back exactly `v`.
fn scaled(v: f64, k: usize) -> Option<i64> {
    let m = (v * POW10[k]).round();
    if !m.is_finite() || m.abs() >= MAX_INT {
        return None;
    }
    let m = m as i64;
    ((m as f64 / POW10[k]).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest scale at which `v` is an exact decimal.
fn scale_of(v: f64) -> Option<usize> {
    (0..=MAX_SCALE).find(|&k| scaled(v, k).is_some())
}

/// Encodes samples (strictly increasing timestamps), or `None` if their values are not
/// decimals this codec holds compactly.
pub fn encode(samples: &[(i64, f64)]) -> Option<Vec<u8>> {
    let n = samples.len();
    if n == 0 {
        return None;
    }
    let raw_budget = n / MAX_RAW_SHARE;
    let mut raws = 0;
    let mut k = 0;
    for &(_, v) in samples {
        match scale_of(v) {
            Some(s) => k = k.max(s),
            None => {
                raws += 1;
                if raws > raw_budget {
                    return None;
                }
            }
        }
    }
    // Integers, with raw values (None) standing in place; a raw slot repeats the previous
    // integer so it costs a zero delta.
    let ints: Vec<Option<i64>> = samples.iter().map(|&(_, v)| scaled(v, k)).collect();
    if ints.iter().filter(|m| m.is_none()).count() > raw_budget {
        return None;
    }
    let m0 = ints.iter().flatten().next().copied().unwrap_or(0);
    let mut prev = m0;
    let mut deltas = Vec::with_capacity(n.saturating_sub(1));
    for m in ints.iter().skip(1) {
        let cur = m.unwrap_or(prev);
        deltas.push(zigzag(cur.wrapping_sub(prev)));
        prev = cur;
    }

    let mut out = BitWriter::default();
    out.write_bits(u64::from(TAG), 8);
    out.write_uvarint(n as u64);
    out.write_varint(samples[0].0);
    if n > 1 {
        let t_delta = samples[1].0.wrapping_sub(samples[0].0);
        out.write_uvarint(t_delta as u64);
        let dods: Vec<u64> = samples
            .windows(3)
            .map(|w| zigzag(w[2].0.wrapping_sub(w[1].0).wrapping_sub(w[1].0.wrapping_sub(w[0].0))))
            .collect();
        write_packed(&mut out, &dods);
    }
    out.write_bits(k as u64, 5);
    out.write_varint(m0);
    write_packed(&mut out, &deltas);
    let raw: Vec<usize> = ints.iter().enumerate().filter(|(_, m)| m.is_none()).map(|(i, _)| i).collect();
    out.write_uvarint(raw.len() as u64);
    let mut last = 0;
    for i in raw {
        out.write_uvarint((i - last) as u64);
        out.write_bits(samples[i].1.to_bits(), 64);
        last = i;
    }
    Some(out.into_bytes())
}

/// Writes unsigned numbers at one bit width, chosen to minimise the total; the few that do
/// not fit (a counter reset, a missed scrape) go first as exceptions.
fn write_packed(out: &mut BitWriter, values: &[u64]) {
    let mut width_count = [0usize; 65];
    for &d in values {
        width_count[(64 - d.leading_zeros()) as usize] += 1;
    }
    // Each exception costs about 80 bits.
    let mut best = (usize::MAX, 64u8);
    for w in 0..=64usize {
        let exceptions: usize = width_count[w + 1..].iter().sum();
        let cost = values.len() * w + exceptions * 80;
        if cost < best.0 {
            best = (cost, w as u8);
        }
    }
    let w = best.1;
    let fits = |d: u64| w >= 64 || d < (1u64 << w);
    out.write_bits(u64::from(w), 7);
    let exceptions: Vec<(usize, u64)> =
        values.iter().enumerate().filter(|(_, d)| !fits(**d)).map(|(i, d)| (i, *d)).collect();
    out.write_uvarint(exceptions.len() as u64);
    let mut last = 0;
    for &(i, d) in &exceptions {
        out.write_uvarint((i - last) as u64);
        out.write_uvarint(d);
        last = i;
    }
    for &d in values {
        out.write_bits(if fits(d) { d } else { 0 }, w);
    }
}

/// Reads `n` numbers written by [`write_packed`].
fn read_packed(r: &mut BitReader<'_>, n: usize) -> Result<Vec<u64>, ChunkError> {
    let w = r.read_bits(7).ok_or(ChunkError::Malformed)? as u8;
    let n_exc = r.read_uvarint().ok_or(ChunkError::Malformed)? as usize;
    if w > 64 || n_exc > n {
        return Err(ChunkError::Malformed);
    }
    let mut exceptions = Vec::with_capacity(n_exc);
    let mut at = 0usize;
    for _ in 0..n_exc {
        at = at
            .checked_add(r.read_uvarint().ok_or(ChunkError::Malformed)? as usize)
            .ok_or(ChunkError::Malformed)?;
        exceptions.push((at, r.read_uvarint().ok_or(ChunkError::Malformed)?));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.read_bits(w).ok_or(ChunkError::Malformed)?);
    }
    for (at, d) in exceptions {
        *out.get_mut(at).ok_or(ChunkError::Malformed)? = d;
    }
    Ok(out)
}

/// Decodes a decimal chunk.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    if bytes.first() != Some(&TAG) {
        return Err(ChunkError::NoHeader);
    }
    let mut r = BitReader { bytes: &bytes[1..], pos: 0 };
    let n = r.read_uvarint().ok_or(ChunkError::NoHeader)? as usize;
    // Each sample takes at least one bit; a count beyond that is damage, not a huge chunk.
    if n == 0 || n > bytes.len().saturating_mul(8) {
        return Err(ChunkError::Malformed);
    }
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(n);
    let mut t = r.read_varint().ok_or(ChunkError::Malformed)?;
    out.push((t, 0.0));
    if n > 1 {
        let mut t_delta = r.read_uvarint().ok_or(ChunkError::Malformed)? as i64;
        t = t.wrapping_add(t_delta);
        out.push((t, 0.0));
        for dod in read_packed(&mut r, n - 2)? {
            t_delta = t_delta.wrapping_add(unzigzag(dod));
            t = t.wrapping_add(t_delta);
            out.push((t, 0.0));
        }
    }
    let k = r.read_bits(5).ok_or(ChunkError::Malformed)? as usize;
    let m0 = r.read_varint().ok_or(ChunkError::Malformed)?;
    if k > MAX_SCALE {
        return Err(ChunkError::Malformed);
    }
    let deltas = read_packed(&mut r, n - 1)?;
    let p = POW10[k];
    let mut m = m0;
    out[0].1 = m as f64 / p;
    for (sample, d) in out.iter_mut().skip(1).zip(deltas) {
        m = m.wrapping_add(unzigzag(d));
        sample.1 = m as f64 / p;
    }
    let n_raw = r.read_uvarint().ok_or(ChunkError::Malformed)? as usize;
    let mut at = 0usize;
    for _ in 0..n_raw {
        at = at
            .checked_add(r.read_uvarint().ok_or(ChunkError::Malformed)? as usize)
            .ok_or(ChunkError::Malformed)?;
        let bits = r.read_bits(64).ok_or(ChunkError::Malformed)?;
        out.get_mut(at).ok_or(ChunkError::Malformed)?.1 = f64::from_bits(bits);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chunk::{self, compact};

    fn round_trip(samples: &[(i64, f64)]) -> Option<usize> {
        let enc = encode(samples)?;
        let got = decode(&enc).expect("decodes");
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        let got: Vec<(i64, u64)> = got.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want);
        Some(enc.len())
    }

    #[test]
    fn counters_and_decimals_shrink_and_round_trip() {
        let mut v = 123_456.0;
        let ints: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                v += (i * 37 % 200) as f64;
                (1_700_000_000_000 + i * 15_000, v)
            })
            .collect();
        let xor = chunk::encode(&ints).len();
        let dec = round_trip(&ints).expect("integers encode");
        assert!(dec * 3 < xor * 2, "decimal {dec} bytes vs XOR {xor}");

        let mut v = 1_000.25;
        let cents: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                v += (i * 131 % 1500) as f64 / 100.0;
                v = (v * 100.0).round() / 100.0;
                (i * 15_000, v)
            })
            .collect();
        let dec = round_trip(&cents).expect("cents encode");
        assert!(dec < chunk::encode(&cents).len());
    }

    #[test]
    fn specials_resets_and_odd_values_are_exact() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let mut s: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, (i * 3) as f64)).collect();
        s[40].1 = 0.0; // counter reset: a wide negative delta
        s[41].1 = 2.0;
        s[60].1 = -0.0;
        s[70].1 = f64::INFINITY;
        s[99].1 = stale;
        s[10].1 = 0.1 + 0.2; // not a short decimal
        round_trip(&s).expect("few specials still encode");
        // A raw first value.
        let mut s2 = s.clone();
        s2[0].1 = f64::NAN;
        round_trip(&s2).expect("raw first value");
        // Irregular timestamps and negative numbers.
        let irregular: Vec<(i64, f64)> =
            (0..50).map(|i| (-5_000 + i * i * 977 - (i % 3) * 13, -1.5 * i as f64)).collect();
        round_trip(&irregular).expect("negatives");
        round_trip(&[(42, 7.0)]).expect("one sample");
        round_trip(&[(i64::MIN, 1e15), (i64::MAX, -1e15)]).expect("extremes");
    }

    #[test]
    fn full_precision_floats_stay_xor() {
        let s: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, (i as f64 * 0.7).sin() * 1e9)).collect();
        assert!(encode(&s).is_none());
        let xor = chunk::encode(&s);
        assert_eq!(compact(&xor), xor);
    }

    #[test]
    fn compact_picks_decimal_and_decode_dispatches() {
        let s: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, (i * 250) as f64)).collect();
        let xor = chunk::encode(&s);
        let small = compact(&xor);
        assert_eq!(small[0], TAG);
        assert!(small.len() < xor.len());
        assert_eq!(chunk::decode(&small).expect("decodes"), chunk::decode(&xor).expect("decodes"));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let s: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, (i * 7 % 50) as f64)).collect();
        let enc = encode(&s).expect("encodes");
        for cut in 0..enc.len() {
            let _ = decode(&enc[..cut]);
        }
        let mut x = 7u64;
        for _ in 0..2000 {
            let mut bad = enc.clone();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = 1 + (x as usize % (bad.len() - 1));
            bad[i] ^= 1 << (x % 8);
            let _ = decode(&bad);
        }
    }
}
