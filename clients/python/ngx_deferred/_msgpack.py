"""A minimal msgpack encoder (the request format of the module's endpoint).

Only what a task needs: None, bool, int, float, str, bytes, list/tuple and
dict with str keys. Standard library only; python3-msgpack is not needed.
"""
import struct

__all__ = ["packb"]


def _pack(o, out):
    if o is None:
        out.append(b"\xc0")
    elif o is True:
        out.append(b"\xc3")
    elif o is False:
        out.append(b"\xc2")
    elif isinstance(o, int):
        if 0 <= o < 0x80:
            out.append(struct.pack("B", o))
        elif -32 <= o < 0:
            out.append(struct.pack("b", o))
        elif 0 <= o < 2 ** 64:
            out.append(b"\xcf" + struct.pack(">Q", o))
        elif -2 ** 63 <= o < 0:
            out.append(b"\xd3" + struct.pack(">q", o))
        else:
            raise OverflowError("integer out of msgpack range: %d" % o)
    elif isinstance(o, float):
        out.append(b"\xcb" + struct.pack(">d", o))
    elif isinstance(o, str):
        b = o.encode("utf-8")
        n = len(b)
        if n < 32:
            out.append(struct.pack("B", 0xA0 | n))
        elif n < 2 ** 8:
            out.append(b"\xd9" + struct.pack("B", n))
        elif n < 2 ** 16:
            out.append(b"\xda" + struct.pack(">H", n))
        else:
            out.append(b"\xdb" + struct.pack(">I", n))
        out.append(b)
    elif isinstance(o, (bytes, bytearray, memoryview)):
        b = bytes(o)
        n = len(b)
        if n < 2 ** 8:
            out.append(b"\xc4" + struct.pack("B", n))
        elif n < 2 ** 16:
            out.append(b"\xc5" + struct.pack(">H", n))
        else:
            out.append(b"\xc6" + struct.pack(">I", n))
        out.append(b)
    elif isinstance(o, (list, tuple)):
        n = len(o)
        if n < 16:
            out.append(struct.pack("B", 0x90 | n))
        elif n < 2 ** 16:
            out.append(b"\xdc" + struct.pack(">H", n))
        else:
            out.append(b"\xdd" + struct.pack(">I", n))
        for x in o:
            _pack(x, out)
    elif isinstance(o, dict):
        n = len(o)
        if n < 16:
            out.append(struct.pack("B", 0x80 | n))
        elif n < 2 ** 16:
            out.append(b"\xde" + struct.pack(">H", n))
        else:
            out.append(b"\xdf" + struct.pack(">I", n))
        for k, v in o.items():
            if not isinstance(k, str):
                raise TypeError("map keys must be str, not %r" % type(k))
            _pack(k, out)
            _pack(v, out)
    else:
        raise TypeError("cannot encode %r as msgpack" % type(o))


def packb(o):
    """o as msgpack bytes."""
    out = []
    _pack(o, out)
    return b"".join(out)
