//! Prometheus remote write 1.0 (protobuf + snappy block format): decoding what a Prometheus
//! sends to `/api/v1/write`, and encoding what obsd sends onward.

pub mod proto;
pub mod queue;
pub mod receive;
mod segment;

use prost::Message;

use crate::config::RemoteWriteLimits;

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("snappy decode error: {0}")]
    Snappy(String),
    #[error("decompressed body of {0} bytes exceeds the limit of {1} bytes")]
    TooLarge(usize, usize),
    #[error("protobuf decode error: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("protobuf decode error: {0}")]
    Malformed(&'static str),
    #[error("request has more than {0} series")]
    TooManySeries(usize),
    #[error("series {series} has more than {limit} labels")]
    TooManyLabels { series: usize, limit: usize },
    #[error("series {series} has more than {limit} bytes of label names and values")]
    LabelBytes { series: usize, limit: usize },
    #[error("request would take about {estimate} bytes decoded, over the limit of {limit} bytes")]
    DecodedTooLarge { estimate: usize, limit: usize },
}

fn over(n: usize, limit: usize) -> bool {
    limit > 0 && n > limit
}

/// Decodes a request body within `limits`.
pub fn decode(body: &[u8], limits: &RemoteWriteLimits) -> Result<proto::WriteRequest, RemoteWriteError> {
    let len = snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if over(len, limits.max_decoded_bytes) {
        return Err(RemoteWriteError::TooLarge(len, limits.max_decoded_bytes));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    check_shape(&raw, limits)?;
    Ok(proto::WriteRequest::decode(raw.as_slice())?)
}

/// A message's fields on the wire, with this module's error.
fn fields(buf: &[u8]) -> impl Iterator<Item = Result<crate::protobuf_wire::Field<'_>, RemoteWriteError>> {
    crate::protobuf_wire::fields(buf).map(|f| f.map_err(RemoteWriteError::Malformed))
}

/// Bytes of the length-delimited fields (a label's name and value) in a message.
fn string_bytes(message: &[u8]) -> Result<usize, RemoteWriteError> {
    let mut total = 0;
    for field in fields(message) {
        total += field?.payload.map_or(0, <[u8]>::len);
    }
    Ok(total)
}

/// Counts series, labels and label bytes on the wire and estimates the decoded size, so a
/// request over a limit is refused before prost allocates anything for it.
fn check_shape(raw: &[u8], limits: &RemoteWriteLimits) -> Result<(), RemoteWriteError> {
    use proto::{Exemplar, Label, MetricMetadata, Sample, TimeSeries};
    use std::mem::size_of;
    let mut series = 0;
    // Starts with the decompressed buffer itself, alive while the request is decoded.
    let mut estimate = raw.len();
    for field in fields(raw) {
        let field = field?;
        let Some(bytes) = field.payload else { continue };
        match field.number {
            1 => {
                series += 1;
                if over(series, limits.max_series) {
                    return Err(RemoteWriteError::TooManySeries(limits.max_series));
                }
                estimate += size_of::<TimeSeries>();
                let (mut labels, mut label_bytes) = (0, 0);
                for f in fields(bytes) {
                    let f = f?;
                    let Some(inner) = f.payload else { continue };
                    match f.number {
                        1 => {
                            labels += 1;
                            if over(labels, limits.max_labels_per_series) {
                                return Err(RemoteWriteError::TooManyLabels {
                                    series: series - 1,
                                    limit: limits.max_labels_per_series,
                                });
                            }
                            let n = string_bytes(inner)?;
                            label_bytes += n;
                            if over(label_bytes, limits.max_label_bytes_per_series) {
                                return Err(RemoteWriteError::LabelBytes {
                                    series: series - 1,
                                    limit: limits.max_label_bytes_per_series,
                                });
                            }
                            estimate += size_of::<Label>() + n;
                        }
                        2 => estimate += size_of::<Sample>(),
                        3 => {
                            estimate += size_of::<Exemplar>();
                            // An exemplar's only length-delimited field is its labels.
                            for e in fields(inner) {
                                if let Some(label) = e?.payload {
                                    estimate += size_of::<Label>() + label.len();
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            3 => estimate += size_of::<MetricMetadata>() + bytes.len(),
            _ => {}
        }
        if over(estimate, limits.max_decoded_bytes) {
            return Err(RemoteWriteError::DecodedTooLarge { estimate, limit: limits.max_decoded_bytes });
        }
    }
    Ok(())
}

pub fn encode(request: &proto::WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::*;

    fn big() -> RemoteWriteLimits {
        RemoteWriteLimits { max_decoded_bytes: 1 << 20, ..RemoteWriteLimits::default() }
    }

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
        assert_eq!(decode(&body, &big()).unwrap(), req);
        assert!(matches!(decode(b"\xff\xff\xff\xff\xff", &big()), Err(RemoteWriteError::Snappy(_))));
        let tiny = RemoteWriteLimits { max_decoded_bytes: 4, ..RemoteWriteLimits::default() };
        assert!(matches!(decode(&body, &tiny), Err(RemoteWriteError::TooLarge(..))));
        let not_proto = snap::raw::Encoder::new().compress_vec(b"\xff\xff\xff").unwrap();
        assert!(matches!(decode(&not_proto, &big()), Err(RemoteWriteError::Malformed(_))));
    }

    fn series(labels: usize, value: &str) -> TimeSeries {
        TimeSeries {
            labels: (0..labels).map(|i| Label { name: format!("l{i}"), value: value.into() }).collect(),
            samples: vec![Sample { value: 1.0, timestamp: 1 }],
            exemplars: vec![],
        }
    }

    #[test]
    fn limits_are_checked_on_the_wire_before_decoding() {
        let limits = RemoteWriteLimits {
            max_series: 3,
            max_labels_per_series: 4,
            max_label_bytes_per_series: 40,
            ..big()
        };
        let req = |timeseries| encode(&WriteRequest { timeseries, metadata: vec![] });
        assert!(decode(&req(vec![series(4, "v"); 3]), &limits).is_ok());
        let e = decode(&req(vec![series(1, "v"); 4]), &limits).unwrap_err();
        assert_eq!(e.to_string(), "request has more than 3 series");
        let e = decode(&req(vec![series(1, "v"), series(5, "v")]), &limits).unwrap_err();
        assert_eq!(e.to_string(), "series 1 has more than 4 labels");
        let e = decode(&req(vec![series(2, &"x".repeat(20))]), &limits).unwrap_err();
        assert_eq!(e.to_string(), "series 0 has more than 40 bytes of label names and values");
    }

    #[test]
    fn empty_series_are_bounded_by_their_decoded_size() {
        // 2 bytes each on the wire, a TimeSeries (72 bytes) each decoded: the 1.6 MB
        // body that peaked at 2 GB.
        let raw: Vec<u8> = [0x0a, 0x00].repeat(50_000);
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let limits = RemoteWriteLimits { max_series: usize::MAX, ..big() };
        let e = decode(&body, &limits).unwrap_err();
        assert!(matches!(e, RemoteWriteError::DecodedTooLarge { .. }), "{e}");
        let e = decode(&body, &big()).map(|_| ()).unwrap_err();
        assert!(
            matches!(e, RemoteWriteError::DecodedTooLarge { .. } | RemoteWriteError::TooManySeries(_)),
            "{e}"
        );
    }
}
