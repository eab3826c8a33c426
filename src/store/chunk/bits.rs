//! Bit streams for the chunk layouts: a writer that gathers bits in a register, and a reader
//! that fails cleanly at the end of its bytes, so damaged chunks decode to an error.

use thiserror::Error;

/// Why a chunk could not be decoded; the store counts these and skips the chunk.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk shorter than its header")]
    NoHeader,
    #[error("chunk ends after {decoded} of {expected} samples")]
    Truncated { decoded: usize, expected: usize },
    #[error("chunk fields are out of range")]
    Malformed,
}

/// Bits are gathered in a 64-bit register and reach the byte vector eight bytes at a time:
/// appending a sample then touches the series' own (already hot) state, not its chunk's heap
/// buffer, which at 100k series is a cache miss per sample.
#[derive(Debug, Clone, Default)]
pub(super) struct BitWriter {
    /// Whole bytes written so far.
    pub(super) bytes: Vec<u8>,
    /// Pending bits, right-aligned; `pending` of them (always < 64).
    pub(super) acc: u64,
    pub(super) pending: u8,
}

impl BitWriter {
    pub(super) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes the low `n` bits of `v`, most significant first.
    pub(super) fn write_bits(&mut self, v: u64, n: u8) {
        if n == 0 {
            return;
        }
        let v = if n >= 64 { v } else { v & ((1u64 << n) - 1) };
        let space = 64 - self.pending;
        if n < space {
            self.acc = (self.acc << n) | v;
            self.pending += n;
            return;
        }
        // Fill the register to 64 bits, flush it, keep the rest of `v`.
        let rest = n - space;
        let full = if self.pending == 0 { v } else { (self.acc << space) | (v >> rest) };
        self.bytes.extend_from_slice(&full.to_be_bytes());
        self.acc = if rest == 0 { 0 } else { v & ((1u64 << rest) - 1) };
        self.pending = rest;
    }

    /// Encoded length so far, the partial last byte included.
    pub(super) fn len(&self) -> usize {
        self.bytes.len() + usize::from(self.pending.div_ceil(8))
    }

    /// Writes the bytes so far (the partial last byte zero-padded) to `out`.
    pub(super) fn copy_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
        if self.pending > 0 {
            let tail = (self.acc << (64 - self.pending)).to_be_bytes();
            out.extend_from_slice(&tail[..usize::from(self.pending.div_ceil(8))]);
        }
    }

    fn write_byte(&mut self, b: u8) {
        self.write_bits(u64::from(b), 8);
    }

    pub(super) fn write_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.write_byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.write_byte(v as u8);
    }

    pub(super) fn write_varint(&mut self, v: i64) {
        self.write_uvarint(crate::store::encoding::zigzag(v));
    }

    /// A timestamp delta-of-delta in one of the five buckets.
    pub(super) fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.write_bit(false);
        } else if fits(dod, 14) {
            self.write_bits(0b10, 2);
            self.write_bits(dod as u64, 14);
        } else if fits(dod, 17) {
            self.write_bits(0b110, 3);
            self.write_bits(dod as u64, 17);
        } else if fits(dod, 20) {
            self.write_bits(0b1110, 4);
            self.write_bits(dod as u64, 20);
        } else {
            self.write_bits(0b1111, 4);
            self.write_bits(dod as u64, 64);
        }
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.copy_to(&mut out);
        out
    }
}

pub(super) struct BitReader<'a> {
    pub(super) bytes: &'a [u8],
    /// Bit position from the start of `bytes`.
    pub(super) pos: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    pub(super) fn read_bits(&mut self, mut n: u8) -> Option<u64> {
        // Fast path: the bits lie in the 8 bytes from the current byte, read as one word (the
        // byte-wise loop below was a fifth of a `topk` query's profile, in decimal chunks).
        let (byte, skip) = (self.pos / 8, (self.pos % 8) as u32);
        if n > 0
            && u32::from(n) + skip <= 64
            && let Some(word) = self.bytes.get(byte..byte + 8)
            && let Ok(word) = <[u8; 8]>::try_from(word)
        {
            self.pos += usize::from(n);
            return Some((u64::from_be_bytes(word) << skip) >> (64 - u32::from(n)));
        }
        let mut out = 0u64;
        while n > 0 {
            let byte = *self.bytes.get(self.pos / 8)?;
            let avail = 8 - (self.pos % 8) as u8;
            let take = n.min(avail);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | u64::from(bits);
            self.pos += usize::from(take);
            n -= take;
        }
        Some(out)
    }

    pub(super) fn read_uvarint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.read_bits(8)?;
            if shift == 63 && b > 1 {
                return None;
            }
            out |= (b & 0x7f) << shift;
            if b < 0x80 {
                return Some(out);
            }
        }
        None
    }

    pub(super) fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some(crate::store::encoding::unzigzag(u))
    }

    pub(super) fn read_dod(&mut self) -> Option<i64> {
        let mut prefix = 0u8;
        for _ in 0..4 {
            if !self.read_bit()? {
                break;
            }
            prefix += 1;
        }
        Some(match prefix {
            0 => 0,
            1 => sign_extend(self.read_bits(14)?, 14),
            2 => sign_extend(self.read_bits(17)?, 17),
            3 => sign_extend(self.read_bits(20)?, 20),
            _ => self.read_bits(64)? as i64,
        })
    }
}

/// Does `v` fit a two's complement field of `bits` bits?
pub(super) fn fits(v: i64, bits: u32) -> bool {
    let lim = 1i64 << (bits - 1);
    (-lim..lim).contains(&v)
}

/// Sign-extends the low `bits` bits.
pub(super) fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_bits_matches_bit_by_bit_reading_everywhere() {
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..rng.usize(0..40)).map(|_| rng.u8(..)).collect();
            let mut fast = BitReader { bytes: &bytes, pos: 0 };
            let mut slow = BitReader { bytes: &bytes, pos: 0 };
            loop {
                let n = rng.u8(0..=64);
                let want: Option<u64> =
                    (0..n).try_fold(0u64, |acc, _| Some((acc << 1) | u64::from(slow.read_bit()?)));
                match want {
                    Some(v) => assert_eq!(fast.read_bits(n), Some(v), "n={n} pos={}", fast.pos),
                    None => {
                        assert_eq!(fast.read_bits(n), None, "n={n} past the end");
                        break;
                    }
                }
                assert_eq!(fast.pos, slow.pos);
            }
        }
    }
}
