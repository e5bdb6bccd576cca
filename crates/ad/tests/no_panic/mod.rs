//! Property tests: arbitrary bytes, mutated real descriptors and arbitrary text never make a
//! parser panic, and whatever parses renders and re-encodes.

use latchkey_ad::{Ace, Acl, Guid, SecurityDescriptor, Sid};
use proptest::prelude::*;

use crate::samples::{all_names, load};

fn exercise(bytes: &[u8]) {
    if let Ok(sd) = SecurityDescriptor::from_bytes(bytes) {
        let sddl = sd.to_sddl();
        let _ = SecurityDescriptor::from_sddl(&sddl, None);
        if let Ok(b) = sd.to_bytes() {
            let again = SecurityDescriptor::from_bytes(&b).expect("re-encoded descriptor parses");
            assert_eq!(again.to_sddl(), sddl);
        }
    }
    let _ = Acl::from_prefix(bytes);
    let _ = Ace::from_prefix(bytes);
    if let Ok(sid) = Sid::from_bytes(bytes) {
        assert_eq!(sid.to_string().parse::<Sid>().unwrap(), sid);
    }
}

fn samples() -> Vec<Vec<u8>> {
    all_names().iter().map(|n| load(n)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_samples(
        which in 0usize..9,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let all = samples();
        let mut bytes = all[which % all.len()].clone();
        for (at, v) in edits {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        // Sometimes truncate as well.
        if cut % 3 == 0 {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        exercise(&bytes);
    }

    #[test]
    fn header_offsets_anywhere(which in 0usize..9, offs in proptest::array::uniform4(any::<u32>()), control in any::<u16>()) {
        let all = samples();
        let mut bytes = all[which % all.len()].clone();
        bytes[2..4].copy_from_slice(&control.to_le_bytes());
        for (i, o) in offs.iter().enumerate() {
            let o = o % (bytes.len() as u32 + 8);
            bytes[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_text(s in ".{0,200}") {
        let _ = SecurityDescriptor::from_sddl(&s, None);
        let _ = s.parse::<Sid>();
        let _ = s.parse::<Guid>();
        let _ = Ace::from_sddl(&s, None);
    }

    #[test]
    fn sddl_shaped_text(s in "[OGDS]:[A-Z(); 0-9a-fx:-]{0,120}") {
        let domain: Sid = "S-1-5-21-1-2-3".parse().unwrap();
        let _ = SecurityDescriptor::from_sddl(&s, Some(&domain));
    }

    #[test]
    fn guid_text_round_trip(bytes in proptest::array::uniform16(any::<u8>())) {
        let g = Guid::from_wire(bytes);
        prop_assert_eq!(g.to_string().parse::<Guid>().unwrap(), g);
    }
}
