//! Save/load as safetensors: exact round trip, the PyTorch layout, and a typed error for
//! every way a file can be wrong.

use regulab_model::io::{self, FORMAT_VERSION, bias_name, weight_name};
use regulab_model::{Activation, Architecture, Init, Mlp, ModelError, Output, Workspace};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;

fn net() -> Mlp {
    let arch = Architecture::with_activations(
        vec![6, 5, 4, 3],
        vec![Activation::Tanh, Activation::Relu],
        Output::Softmax,
    )
    .unwrap();
    let mut net = Mlp::new(arch, &Init::Glorot, 77).unwrap();
    // values whose bits must survive: -0, subnormal, extremes
    net.bias_mut(0)
        .copy_from_slice(&[-0.0, f32::MIN_POSITIVE / 8.0, f32::MAX, -1e-30, 0.1]);
    net
}

fn bits(net: &Mlp) -> Vec<u32> {
    net.layers()
        .iter()
        .flat_map(|l| l.weight().iter().chain(l.bias()).map(|v| v.to_bits()))
        .collect()
}

#[test]
fn round_trip_is_bit_exact_and_predictions_equal() {
    let a = net();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    io::save(&a, &path).unwrap();
    let b = io::load(&path).unwrap();
    assert_eq!(a.architecture(), b.architecture());
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(io::load_expecting(&path, a.architecture()).unwrap(), b);
    // no temporary file left behind
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let x: Vec<f32> = (0..6 * 9).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut ws = Workspace::new(a.architecture(), 9);
    let za = a.outputs(&mut ws, &x).unwrap().to_vec();
    let zb = b.outputs(&mut ws, &x).unwrap().to_vec();
    assert_eq!(za, zb);
}

/// Weights are stored `[out, in]` like `nn.Linear.weight`, and a plain
/// `h @ W.T + b` forward from the file's tensors (what numpy would do) reproduces the
/// model's outputs.
#[test]
fn layout_is_pytorch_linear_and_a_plain_forward_matches() {
    let a = net();
    let bytes = io::to_bytes(&a).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["format_version"], FORMAT_VERSION);
    assert_eq!(meta["format"], "pt");
    assert_eq!(
        meta["architecture"],
        r#"{"sizes":[6,5,4,3],"hidden":["tanh","relu"],"output":"softmax"}"#
    );
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        [
            "layers.0.bias",
            "layers.0.weight",
            "layers.1.bias",
            "layers.1.weight",
            "layers.2.bias",
            "layers.2.weight"
        ]
    );
    let read = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32);
        let v = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (t.shape().to_vec(), v)
    };
    let (shape, w0) = read("layers.0.weight");
    assert_eq!(shape, vec![5, 6]);
    // stored (j, r) = W[r, j]
    assert_eq!(w0[2 * 6 + 4], a.weight(0)[4 * 5 + 2]);

    // plain f64 forward from the file's tensors: h_{i+1} = f(h_i @ W_i.T + b_i)
    let mut sane = a.clone();
    sane.bias_mut(0)
        .copy_from_slice(&[0.0, 0.05, 0.3, -0.1, 0.1]);
    let bytes = io::to_bytes(&sane).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let read = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        let v = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (t.shape().to_vec(), v)
    };
    let x: Vec<f32> = (0..6).map(|i| i as f32 * 0.1 - 0.2).collect();
    let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let acts = [Activation::Tanh, Activation::Relu, Activation::Identity];
    for (i, act) in acts.iter().enumerate() {
        let (shape, w) = read(&weight_name(i));
        let (_, b) = read(&bias_name(i));
        let (n_out, n_in) = (shape[0], shape[1]);
        h = (0..n_out)
            .map(|j| {
                let a = b[j] as f64
                    + (0..n_in)
                        .map(|r| h[r] * w[j * n_in + r] as f64)
                        .sum::<f64>();
                match act {
                    Activation::Tanh => a.tanh(),
                    Activation::Relu => a.max(0.0),
                    _ => a,
                }
            })
            .collect();
    }
    let loaded = io::from_bytes(&bytes).unwrap();
    let mut ws = Workspace::new(loaded.architecture(), 1);
    let z = loaded.outputs(&mut ws, &x).unwrap();
    assert_eq!(z.len(), 3);
    for (m, r) in z.iter().zip(&h) {
        assert!((*m as f64 - r).abs() < 1e-5, "{m} vs {r}");
    }
}

#[test]
fn truncated_files_are_errors() {
    let bytes = io::to_bytes(&net()).unwrap();
    for cut in [0, 5, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        match io::from_bytes(&bytes[..cut]) {
            Err(ModelError::Truncated { detail }) => assert!(!detail.is_empty()),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // through a file as well
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    assert!(matches!(io::load(&path), Err(ModelError::Truncated { .. })));
    assert!(matches!(
        io::load(&dir.path().join("missing.safetensors")),
        Err(ModelError::Io { .. })
    ));
}

#[test]
fn corrupt_files_are_errors() {
    let bytes = io::to_bytes(&net()).unwrap();
    // garbage in the JSON header
    let mut bad = bytes.clone();
    bad[10] = b'#';
    assert!(matches!(io::from_bytes(&bad), Err(ModelError::Corrupt(_))));
    // an absurd header length
    let mut bad = bytes.clone();
    bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(io::from_bytes(&bad), Err(ModelError::Corrupt(_))));
    // trailing bytes after the declared data
    let mut bad = bytes.clone();
    bad.extend_from_slice(&[0; 4]);
    assert!(matches!(io::from_bytes(&bad), Err(ModelError::Corrupt(_))));
    // random bytes
    let junk: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    assert!(io::from_bytes(&junk).is_err());
}

/// A file with the given tensors `(name, dtype, shape)` and metadata.
fn file(tensors: &[(&str, Dtype, Vec<usize>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, d, s)| vec![0u8; s.iter().product::<usize>() * d.bitsize() / 8])
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&data)
        .map(|((n, d, s), b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

const ARCH: &str = r#"{"sizes":[3,2],"hidden":[],"output":"linear"}"#;

#[test]
fn mismatched_files_are_errors_naming_the_tensor() {
    let ok = [
        ("layers.0.weight", Dtype::F32, vec![2, 3]),
        ("layers.0.bias", Dtype::F32, vec![2]),
    ];
    let meta = [("format_version", "1"), ("architecture", ARCH)];
    let good = io::from_bytes(&file(&ok, &meta)).unwrap();
    assert_eq!(good.architecture().sizes, vec![3, 2]);

    // wrong shape (the [in, out] transpose)
    let e = io::from_bytes(&file(
        &[("layers.0.weight", Dtype::F32, vec![3, 2]), ok[1].clone()],
        &meta,
    ))
    .unwrap_err();
    match e {
        ModelError::ShapeMismatch {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "layers.0.weight");
            assert_eq!(expected, vec![2, 3]);
            assert_eq!(found, vec![3, 2]);
        }
        other => panic!("{other:?}"),
    }
    // wrong dtype
    let e = io::from_bytes(&file(
        &[ok[0].clone(), ("layers.0.bias", Dtype::F64, vec![2])],
        &meta,
    ))
    .unwrap_err();
    assert!(
        matches!(&e, ModelError::DtypeMismatch { name, found } if name == "layers.0.bias" && found == "F64"),
        "{e:?}"
    );
    // missing tensor
    let e = io::from_bytes(&file(&ok[..1], &meta)).unwrap_err();
    assert!(
        matches!(&e, ModelError::MissingTensor { name, expected } if name == "layers.0.bias" && expected == &vec![2]),
        "{e:?}"
    );
    // extra tensor
    let mut extra = ok.to_vec();
    extra.push(("layers.1.weight", Dtype::F32, vec![2, 2]));
    let e = io::from_bytes(&file(&extra, &meta)).unwrap_err();
    assert!(
        matches!(&e, ModelError::UnexpectedTensor { name } if name == "layers.1.weight"),
        "{e:?}"
    );
    // metadata problems
    assert!(matches!(
        io::from_bytes(&file(&ok, &[("architecture", ARCH)])),
        Err(ModelError::MissingMetadata("format_version"))
    ));
    assert!(matches!(
        io::from_bytes(&file(&ok, &[("format_version", "1")])),
        Err(ModelError::MissingMetadata("architecture"))
    ));
    assert!(matches!(
        io::from_bytes(&file(
            &ok,
            &[("format_version", "2"), ("architecture", ARCH)]
        )),
        Err(ModelError::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        io::from_bytes(&file(
            &ok,
            &[("format_version", "1"), ("architecture", "{\"sizes\":[3]}")]
        )),
        Err(ModelError::BadMetadata {
            key: "architecture",
            ..
        })
    ));
    assert!(matches!(
        io::from_bytes(&file(
            &ok,
            &[
                ("format_version", "1"),
                (
                    "architecture",
                    r#"{"sizes":[3,0],"hidden":[],"output":"linear"}"#
                )
            ]
        )),
        Err(ModelError::BadMetadata {
            key: "architecture",
            ..
        })
    ));
    // an architecture other than the expected one
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, file(&ok, &meta)).unwrap();
    let other = Architecture::new(vec![3, 4, 2], Activation::Relu, Output::Softmax).unwrap();
    assert!(matches!(
        io::load_expecting(&path, &other),
        Err(ModelError::ArchitectureMismatch { .. })
    ));
}

/// The same network gives the same file bytes every time (runs are compared bit for
/// bit), and the hand-written header is what the `safetensors` crate expects.
#[test]
fn bytes_are_deterministic_and_readable_by_safetensors() {
    let net = regulab_model::MlpBuilder::new(5)
        .hidden(4, regulab_model::Activation::Tanh)
        .output(3, regulab_model::Output::Softmax)
        .seed(9)
        .build()
        .unwrap();
    let a = regulab_model::io::to_bytes(&net).unwrap();
    for _ in 0..5 {
        assert!(regulab_model::io::to_bytes(&net).unwrap() == a);
    }
    let st = safetensors::SafeTensors::deserialize(&a).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        [
            "layers.0.bias",
            "layers.0.weight",
            "layers.1.bias",
            "layers.1.weight"
        ]
    );
    assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), [4, 5]);
    let header_len = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + header_len) % 8, 0);
}

/// The bytes of a model file are those regulab wrote before its writer became the
/// shared [`regulab_model::tensorfile`] (SHA-256 recorded then): old run directories
/// verify against reruns, byte for byte.
#[test]
fn bytes_are_those_of_the_hand_written_format() {
    let net = regulab_model::MlpBuilder::new(6)
        .hidden(5, regulab_model::Activation::Sigmoid)
        .hidden(4, regulab_model::Activation::Relu)
        .output(3, regulab_model::Output::Softmax)
        .seed(3)
        .build()
        .unwrap();
    let bytes = io::to_bytes(&net).unwrap();
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        "4336f69e8ccbd7c3fd87940f86e820457c7cb2209ca9792f5a888b22667f5dc0"
    );
    assert_eq!(bytes.len(), 880);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(
        header.trim_end(),
        r#"{"__metadata__":{"architecture":"{\"sizes\":[6,5,4,3],\"hidden\":[\"sigmoid\",\"relu\"],\"output\":\"softmax\"}","format":"pt","format_version":"1"},"layers.0.bias":{"data_offsets":[0,20],"dtype":"F32","shape":[5]},"layers.0.weight":{"data_offsets":[20,140],"dtype":"F32","shape":[5,6]},"layers.1.bias":{"data_offsets":[140,156],"dtype":"F32","shape":[4]},"layers.1.weight":{"data_offsets":[156,236],"dtype":"F32","shape":[4,5]},"layers.2.bias":{"data_offsets":[236,248],"dtype":"F32","shape":[3]},"layers.2.weight":{"data_offsets":[248,296],"dtype":"F32","shape":[3,4]}}"#
    );
    // the data: [out, in] transposes, biases zero
    let data = &bytes[8 + header_len..];
    let f = |k: usize| f32::from_le_bytes(data[4 * k..4 * k + 4].try_into().unwrap());
    assert_eq!(
        f(5 + 2 * 6 + 4).to_bits(),
        net.weight(0)[4 * 5 + 2].to_bits()
    );
    assert!((0..5).all(|k| f(k) == 0.0));
}
