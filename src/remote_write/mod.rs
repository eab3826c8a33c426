//! Prometheus remote write 1.0 (protobuf + snappy block format): decoding what a Prometheus
//! sends to `/api/v1/write`, and encoding what obsd sends onward.

pub mod proto;

use prost::Message;

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("snappy decode error: {0}")]
    Snappy(String),
    #[error("decompressed body of {0} bytes exceeds the limit of {1} bytes")]
    TooLarge(usize, usize),
    #[error("protobuf decode error: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decodes a request body; `max_decoded` bounds memory before decompressing.
pub fn decode(body: &[u8], max_decoded: usize) -> Result<proto::WriteRequest, RemoteWriteError> {
    let len = snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if len > max_decoded {
        return Err(RemoteWriteError::TooLarge(len, max_decoded));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    Ok(proto::WriteRequest::decode(raw.as_slice())?)
}

pub fn encode(request: &proto::WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::*;

    #[test]
    fn round_trip_and_bad_input() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label { name: "__name__".into(), value: "up".into() }],
                samples: vec![Sample { value: 1.0, timestamp: 1000 }],
                exemplars: vec![],
            }],
            metadata: vec![],
        };
        let body = encode(&req);
        assert_eq!(decode(&body, 1 << 20).unwrap(), req);
        assert!(matches!(decode(b"\xff\xff\xff\xff\xff", 1 << 20), Err(RemoteWriteError::Snappy(_))));
        assert!(matches!(decode(&body, 4), Err(RemoteWriteError::TooLarge(..))));
        let not_proto = snap::raw::Encoder::new().compress_vec(b"\xff\xff\xff").unwrap();
        assert!(matches!(decode(&not_proto, 1 << 20), Err(RemoteWriteError::Protobuf(_))));
    }
}
