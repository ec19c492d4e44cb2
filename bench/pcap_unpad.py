#!/usr/bin/python3
"""Ethernet padding and the bench capture's copies.

tcprewrite 4.4.1 to 4.4.4 (Debian 12 has 4.4.3) sets the IPv4 total length and the IPv6
payload length of a frame to everything after its layer-2 header, Ethernet padding included
(appneta/tcpreplay issues 844 and 845, option --fixhdrlen in 4.4.5). A bare TCP ACK padded
to 60 bytes then carries 6 bytes of data, at the sequence number the next segment starts
at, and the copies' TCP streams are no longer the original's. So the bench strips the
padding before rewriting, and checks the copies afterwards.

  pcap_unpad.py strip IN OUT          write IN without the padding of Ethernet frames
                                      carrying IPv4 or IPv6 (after up to two VLAN tags);
                                      frames cut by the snap length, and everything else,
                                      are copied as they are
  pcap_unpad.py restore BASE COPY OUT write COPY (BASE rewritten by tcprewrite) with the IP
                                      length fields of BASE: the same bug "corrects" the
                                      length of a packet the capture cut short to what was
                                      captured (IPv4 header checksum recomputed); exits 1
                                      unless both hold as many frames, of the same lengths

Classic pcap only (either byte order, microsecond or nanosecond), which is what mergecap -F
pcap and tcprewrite write.
"""
import struct
import sys

ETH_IPV4, ETH_IPV6, VLAN_TAGS = 0x0800, 0x86DD, (0x8100, 0x88A8, 0x9100)


def frames(path):
    """Yields (file header, None) once, then (record header fields, frame bytes)."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise SystemExit(f"{path}: not a pcap file (too short)")
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            order = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            order = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file (magic {magic.hex()})")
        linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
        yield (order, head, linktype), None
        rec = struct.Struct(order + "IIII")
        while True:
            h = f.read(16)
            if not h:
                return
            if len(h) < 16:
                raise SystemExit(f"{path}: cut in a record header")
            sec, frac, caplen, length = rec.unpack(h)
            data = f.read(caplen)
            if len(data) < caplen:
                raise SystemExit(f"{path}: cut in a frame")
            yield (sec, frac, caplen, length), data


def ip_end(data):
    """The offset just past the IP packet of an Ethernet frame, and the IP length field's
    offset, or (None, None) when the frame carries no whole IPv4/IPv6 header."""
    off = 12
    if len(data) < 14:
        return None, None
    etype = struct.unpack_from(">H", data, off)[0]
    for _ in range(2):
        if etype not in VLAN_TAGS or len(data) < off + 6:
            break
        off += 4
        etype = struct.unpack_from(">H", data, off)[0]
    l3 = off + 2
    if etype == ETH_IPV4 and len(data) >= l3 + 20 and data[l3] >> 4 == 4:
        total = struct.unpack_from(">H", data, l3 + 2)[0]
        # shorter than its own header (0 from segmentation offload): not a length to trust
        return (l3 + total if total >= (data[l3] & 15) * 4 >= 20 else None), l3 + 2
    if etype == ETH_IPV6 and len(data) >= l3 + 40 and data[l3] >> 4 == 6:
        plen = struct.unpack_from(">H", data, l3 + 4)[0]
        return (l3 + 40 + plen if plen else None), l3 + 4  # 0: a jumbogram, left alone
    return None, None


def strip(src, dst):
    stripped = 0
    it = frames(src)
    (order, head, linktype), _ = next(it)
    rec = struct.Struct(order + "IIII")
    with open(dst, "wb") as out:
        out.write(head)
        for (sec, frac, caplen, length), data in it:
            if linktype == 1 and caplen == length:
                end, _ = ip_end(data)
                if end is not None and 14 <= end < caplen:
                    data = data[:end]
                    caplen = length = end
                    stripped += 1
            out.write(rec.pack(sec, frac, caplen, length))
            out.write(data)
    print(f"pcap_unpad: {stripped} padded frames stripped in {dst}")


def ipv4_checksum(header):
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def restore(base, copy, dst):
    ia, ib = frames(base), frames(copy)
    (_, _, lta), _ = next(ia)
    (order, head, ltb), _ = next(ib)
    if lta != ltb:
        raise SystemExit(f"pcap_unpad: link types differ ({lta}, {ltb})")
    rec = struct.Struct(order + "IIII")
    n = restored = 0
    with open(dst, "wb") as out:
        out.write(head)
        while True:
            ra, rb = next(ia, None), next(ib, None)
            if ra is None or rb is None:
                if ra is not rb:
                    raise SystemExit(
                        f"pcap_unpad: {base} and {copy} hold different numbers of frames")
                break
            n += 1
            (_, _, cla, la), da = ra
            (sec, frac, clb, lb), db = rb
            if (cla, la) != (clb, lb):
                raise SystemExit(f"pcap_unpad: frame {n} differs in length in {base} and {copy}")
            if lta == 1:
                _, fa = ip_end(da)
                _, fb = ip_end(db)
                if fa != fb:
                    raise SystemExit(f"pcap_unpad: frame {n} is no longer the same IP packet")
                if fa is not None and da[fa : fa + 2] != db[fb : fb + 2]:
                    db = bytearray(db)
                    db[fb : fb + 2] = da[fa : fa + 2]
                    if db[fb - 2] >> 4 == 4:  # IPv4: the header checksum covers the length
                        l3 = fb - 2
                        ihl = (db[l3] & 15) * 4
                        if ihl >= 20 and len(db) >= l3 + ihl:
                            db[l3 + 10 : l3 + 12] = b"\0\0"
                            header = bytes(db[l3 : l3 + ihl])
                            struct.pack_into(">H", db, l3 + 10, ipv4_checksum(header))
                    db = bytes(db)
                    restored += 1
            out.write(rec.pack(sec, frac, clb, lb))
            out.write(db)
    print(f"pcap_unpad: {restored} IP length fields restored in {dst}")


def main(argv):
    if len(argv) == 4 and argv[1] == "strip":
        strip(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "restore":
        restore(argv[2], argv[3], argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
