//! Chunks: the unit samples are stored in. The head appends into XOR chunks (`xor`, Gorilla as
//! Prometheus lays it out); a closed chunk goes to disk in whichever of that and the decimal
//! layout (`decimal`) is smaller. The first byte tells them apart, and `decode` reads both.
//! Pure leaves: bytes in, samples out, no I/O.

pub mod bits;
pub mod decimal;
pub mod xor;

pub use bits::ChunkError;
pub use xor::{MAX_SAMPLES, XorAppender, XorIter, encode};

/// Decodes a whole chunk of either layout (XOR, or decimal for chunks written to disk);
/// stops at the first error.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    if bytes.first() == Some(&decimal::TAG) {
        return decimal::decode(bytes);
    }
    xor::XorIter::new(bytes)?.collect()
}

/// The smaller of the two layouts for `samples`; `None` only if neither holds them (the
/// decimal layout refuses the values and there are more than an XOR chunk's count).
pub fn encode_smallest(samples: &[(i64, f64)]) -> Option<Vec<u8>> {
    let xor = (samples.len() <= xor::MAX_SAMPLES).then(|| xor::encode(samples));
    match (decimal::encode(samples), xor) {
        (Some(d), Some(x)) => Some(if d.len() < x.len() { d } else { x }),
        (d, x) => d.or(x),
    }
}

/// The smaller of an XOR chunk and its decimal form (the XOR bytes back if they do not decode).
pub fn compact(xor: &[u8]) -> Vec<u8> {
    let Ok(samples) = decode(xor) else { return xor.to_vec() };
    match decimal::encode(&samples) {
        Some(d) if d.len() < xor.len() => d,
        _ => xor.to_vec(),
    }
}
