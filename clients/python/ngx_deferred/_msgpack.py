"""A minimal msgpack encoder (the request format of the module's endpoint).

Only what a task needs: None, bool, int, float, str, bytes, list/tuple and
dict with str keys. Standard library only; python3-msgpack is not needed.
"""
import struct

__all__ = ["packb"]


def _header(out, n, c8, c16, c32):
    """A str/bin header: 1-, 2- or 4-byte length after its type byte."""
    if n < 2 ** 8:
        out.append(c8 + struct.pack("B", n))
    elif n < 2 ** 16:
        out.append(c16 + struct.pack(">H", n))
    else:
        out.append(c32 + struct.pack(">I", n))


def _container(out, n, fix, c16, c32):
    """An array/map header: fix form below 16 elements, else 2 or 4 bytes."""
    if n < 16:
        out.append(struct.pack("B", fix | n))
    elif n < 2 ** 16:
        out.append(c16 + struct.pack(">H", n))
    else:
        out.append(c32 + struct.pack(">I", n))


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
        if len(b) < 32:
            out.append(struct.pack("B", 0xA0 | len(b)))
        else:
            _header(out, len(b), b"\xd9", b"\xda", b"\xdb")
        out.append(b)
    elif isinstance(o, (bytes, bytearray, memoryview)):
        b = bytes(o)
        _header(out, len(b), b"\xc4", b"\xc5", b"\xc6")
        out.append(b)
    elif isinstance(o, (list, tuple)):
        _container(out, len(o), 0x90, b"\xdc", b"\xdd")
        for x in o:
            _pack(x, out)
    elif isinstance(o, dict):
        _container(out, len(o), 0x80, b"\xde", b"\xdf")
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
