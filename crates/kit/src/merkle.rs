//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0) §2.1 over SHA-256: the tree
//! hash of a list of leaves, the inclusion proof of one leaf, the consistency proof between two
//! sizes of one append-only list, and the verification of both exactly as §2.1.3.2 and
//! §2.1.4.2 specify. Pure functions over leaf hashes, or over the stored perfect subtrees of
//! a log ([`Nodes`]): the audit log (`crate::audit::log`) keeps those and appends with
//! [`append`].

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// Where a tree's hashes come from: the hash of the perfect subtree at `level` and `index`,
/// which covers leaves `index·2^level .. (index+1)·2^level`. A stored log keeps these nodes
/// (issue 22, item 3), so its roots and proofs read O(log n) of them instead of every leaf;
/// the algorithms below ask only for nodes whose leaves all exist.
pub trait Nodes {
    fn perfect(&mut self, level: u32, index: u64) -> Hash;
}

/// Leaves held in memory: a perfect subtree is hashed from its leaves when asked for.
impl Nodes for &[Hash] {
    fn perfect(&mut self, level: u32, index: u64) -> Hash {
        let width = 1usize << level;
        let start = index as usize * width;
        range_root(&self[start..start + width])
    }
}

/// Any function of (level, index).
impl<F: FnMut(u32, u64) -> Hash> Nodes for F {
    fn perfect(&mut self, level: u32, index: u64) -> Hash {
        self(level, index)
    }
}

fn range_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&range_root(&leaves[..k]), &range_root(&leaves[k..]))
        }
    }
}

/// MTH(D[a:b]) from the perfect subtrees that make it up.
fn mth(a: u64, b: u64, nodes: &mut dyn Nodes) -> Hash {
    let n = b - a;
    if n == 0 {
        return Sha256::digest([]).into();
    }
    if n.is_power_of_two() && a.is_multiple_of(n) {
        return nodes.perfect(n.trailing_zeros(), a / n);
    }
    // A subtree of RFC 9162's shape is aligned; an unaligned range is still hashed right,
    // split at its own largest power of two.
    let k = if n.is_power_of_two() { n / 2 } else { split(n) };
    node_hash(&mth(a, a + k, nodes), &mth(a + k, b, nodes))
}

/// MTH(D[n]) of the leaves' hashes; the empty list hashes to SHA-256 of nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    range_root(leaves)
}

/// MTH of the first `size` leaves of a tree whose perfect subtrees `nodes` gives.
pub fn root_of(size: u64, nodes: &mut dyn Nodes) -> Hash {
    mth(0, size, nodes)
}

/// PATH(m, D[n]): the inclusion proof of leaf `index`, from the leaf up. None when out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    inclusion_proof_of(index as u64, leaves.len() as u64, &mut { leaves })
}

/// PATH(index, D[size]) from the perfect subtrees `nodes` gives.
pub fn inclusion_proof_of(index: u64, size: u64, nodes: &mut dyn Nodes) -> Option<Vec<Hash>> {
    if index >= size {
        return None;
    }
    let mut proof = Vec::new();
    path(index, 0, size, nodes, &mut proof);
    Some(proof)
}

fn path(m: u64, a: u64, b: u64, nodes: &mut dyn Nodes, out: &mut Vec<Hash>) {
    let n = b - a;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, a, a + k, nodes, out);
        out.push(mth(a + k, b, nodes));
    } else {
        path(m - k, a + k, b, nodes, out);
        out.push(mth(a, a + k, nodes));
    }
}

/// PROOF(m, D[n]): the consistency proof from the first `m` leaves to all of them. None unless
/// 0 < m ≤ n.
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    consistency_proof_of(m as u64, leaves.len() as u64, &mut { leaves })
}

/// PROOF(first, D[second]) from the perfect subtrees `nodes` gives.
pub fn consistency_proof_of(first: u64, second: u64, nodes: &mut dyn Nodes) -> Option<Vec<Hash>> {
    if first == 0 || first > second {
        return None;
    }
    let mut proof = Vec::new();
    subproof(first, 0, second, true, nodes, &mut proof);
    Some(proof)
}

fn subproof(m: u64, a: u64, b: u64, whole: bool, nodes: &mut dyn Nodes, out: &mut Vec<Hash>) {
    let n = b - a;
    if m == n {
        if !whole {
            out.push(mth(a, b, nodes));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, a, a + k, whole, nodes, out);
        out.push(mth(a + k, b, nodes));
    } else {
        subproof(m - k, a + k, b, false, nodes, out);
        out.push(mth(a, a + k, nodes));
    }
}

/// The perfect subtrees a tree of `size` leaves is made of, left to right, as (level, index):
/// one per bit set in `size`. Appending a leaf needs only these (the log's frontier).
pub fn frontier(size: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..u64::BITS).rev() {
        if size & (1 << level) != 0 {
            out.push((level, start >> level));
            start += 1 << level;
        }
    }
    out
}

/// Appends the leaf `leaf` at index `size` to a tree whose frontier hashes are `frontier`
/// (as [`frontier`] lists them): returns every new perfect node, (level, index, hash), the
/// leaf first, and leaves `frontier` as the new size's.
pub fn append(size: u64, frontier: &mut Vec<Hash>, leaf: Hash) -> Vec<(u32, u64, Hash)> {
    let mut made = vec![(0, size, leaf)];
    let (mut level, mut index, mut hash) = (0u32, size, leaf);
    while index & 1 == 1 {
        let left = frontier.pop().expect("a frontier node for each set bit");
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        made.push((level, index, hash));
    }
    frontier.push(hash);
    made
}

/// §2.1.3.2: does `proof` show the leaf hashing to `leaf` at `index` in the tree of `size`
/// leaves whose root is `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// §2.1.4.2: does `proof` show the tree of `first` leaves with root `first_root` to be a prefix
/// of the tree of `second` leaves with root `second_root`? Equal sizes need an empty proof and
/// equal roots.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_root && sr == *second_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Certificate Transparency's reference leaves (the inputs of its test suites since
    /// RFC 6962) and the published roots of their first 1..8 (figures from the public suites).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference() -> Vec<Hash> {
        LEAVES
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).unwrap()))
            .collect()
    }

    fn hexes(v: &[Hash]) -> Vec<String> {
        v.iter().map(hex::encode).collect()
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn the_roots_are_certificate_transparencys() {
        let d = reference();
        for n in 1..=8 {
            assert_eq!(hex::encode(root(&d[..n])), ROOTS[n - 1], "{n} leaves");
        }
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_published_proofs_of_the_eight_leaf_tree_are_reproduced() {
        let d = reference();
        let root8 = root(&d);
        let p0 = inclusion_proof(&d, 0).unwrap();
        assert_eq!(
            hexes(&p0),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        let p5 = inclusion_proof(&d, 5).unwrap();
        assert_eq!(
            hexes(&p5),
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert!(verify_inclusion(&d[0], 0, 8, &p0, &root8));
        assert!(verify_inclusion(&d[5], 5, 8, &p5, &root8));
        // From one leaf to eight, the proof is leaf 0's path.
        assert_eq!(consistency_proof(&d, 1).unwrap(), p0);
    }

    #[test]
    fn every_leaf_of_every_tree_up_to_40_proves_its_inclusion_and_no_other() {
        for n in 1..=40 {
            let d = leaves(n);
            let r = root(&d);
            for i in 0..n {
                let p = inclusion_proof(&d, i).unwrap();
                assert!(
                    verify_inclusion(&d[i], i as u64, n as u64, &p, &r),
                    "{i} of {n}"
                );
                // Another leaf, another index, another size or a changed step is refused.
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify_inclusion(&d[other], i as u64, n as u64, &p, &r));
                    assert!(!verify_inclusion(&d[i], other as u64, n as u64, &p, &r));
                }
                // (Another size may accept the same path where the shapes agree — leaf 0 of 3
                // reads as leaf 0 of 4 — so a root is only ever trusted with its size, as a
                // signed checkpoint gives them.)
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = node_hash(first, first);
                    assert!(!verify_inclusion(&d[i], i as u64, n as u64, &bad, &r));
                }
            }
            assert!(inclusion_proof(&d, n).is_none());
        }
    }

    #[test]
    fn every_prefix_of_every_tree_up_to_40_is_proved_consistent_and_a_fork_is_not() {
        for n in 1..=40 {
            let d = leaves(n);
            let second = root(&d);
            for m in 1..=n {
                let first = root(&d[..m]);
                let p = consistency_proof(&d, m).unwrap();
                assert!(
                    verify_consistency(m as u64, n as u64, &first, &second, &p),
                    "{m} -> {n}"
                );
                if m < n {
                    // A forked history: the first tree with one leaf changed.
                    let mut forked = d[..m].to_vec();
                    forked[m - 1] = leaf_hash(b"rewritten");
                    let forked_root = root(&forked);
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &forked_root,
                        &second,
                        &p
                    ));
                    // Another later root (a rollback or a rewrite of the suffix).
                    assert!(!verify_consistency(m as u64, n as u64, &first, &first, &p));
                    let mut bad = p.clone();
                    let last = bad.len() - 1;
                    bad[last] = node_hash(&bad[last], &bad[last]);
                    assert!(!verify_consistency(
                        m as u64, n as u64, &first, &second, &bad
                    ));
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &first,
                        &second,
                        &[]
                    ));
                }
            }
        }
        assert!(!verify_consistency(0, 3, &[0; 32], &[0; 32], &[]));
        assert!(!verify_consistency(4, 3, &[0; 32], &[0; 32], &[]));
    }

    #[test]
    fn a_log_grown_by_append_keeps_the_nodes_its_roots_and_proofs_need() {
        let d = leaves(70);
        let mut stored = std::collections::HashMap::new();
        let mut edge = Vec::new();
        for (i, leaf) in d.iter().enumerate() {
            for (level, index, hash) in append(i as u64, &mut edge, *leaf) {
                assert!(stored.insert((level, index), hash).is_none(), "made once");
            }
            let size = i as u64 + 1;
            let want: Vec<Hash> = frontier(size).iter().map(|k| stored[k]).collect();
            assert_eq!(edge, want, "frontier after {size}");
        }
        let mut nodes = |level: u32, index: u64| stored[&(level, index)];
        for n in 1..=70u64 {
            let slice = &d[..n as usize];
            assert_eq!(root_of(n, &mut nodes), root(slice), "root of {n}");
            for m in 0..n {
                assert_eq!(
                    inclusion_proof_of(m, n, &mut nodes),
                    inclusion_proof(slice, m as usize)
                );
            }
            for m in 1..=n {
                assert_eq!(
                    consistency_proof_of(m, n, &mut nodes),
                    consistency_proof(slice, m as usize)
                );
            }
        }
    }
}
