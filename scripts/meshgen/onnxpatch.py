"""Minimal ONNX (protobuf wire format) editing without the `onnx` package: list a graph's nodes and expose
an internal tensor as an extra graph output. Used to read the phoneme durations a Piper (VITS) voice
computes internally (the `Ceil` node's output, in spectrogram frames), which the stock export does not return."""


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _enc_varint(n):
    out = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        if n:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def _fields(b, start=0, end=None):
    """Yields (field number, wire type, value start, value end) of one message's fields."""
    i, end = start, len(b) if end is None else end
    while i < end:
        k, i = _varint(b, i)
        f, wt = k >> 3, k & 7
        if wt == 0:
            _, j = _varint(b, i)
            yield f, wt, i, j
            i = j
        elif wt == 1:
            yield f, wt, i, i + 8
            i += 8
        elif wt == 5:
            yield f, wt, i, i + 4
            i += 4
        elif wt == 2:
            n, j = _varint(b, i)
            yield f, wt, j, j + n
            i = j + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")


def _ld(field, payload):
    """A length-delimited field."""
    return _enc_varint(field << 3 | 2) + _enc_varint(len(payload)) + payload


def graph_span(b):
    """(start, end, key start) of ModelProto.graph (field 7)."""
    i = 0
    while i < len(b):
        k0 = i
        k, i = _varint(b, i)
        f, wt = k >> 3, k & 7
        if wt == 2:
            n, j = _varint(b, i)
            if f == 7:
                return j, j + n, k0
            i = j + n
        elif wt == 0:
            _, i = _varint(b, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError("not an ONNX model")
    raise ValueError("not an ONNX model (no graph)")


def nodes(b):
    """[(op_type, name, inputs, outputs)] of the main graph."""
    gs, ge, _ = graph_span(b)
    out = []
    for f, wt, s, e in _fields(b, gs, ge):
        if f != 1:
            continue
        ins, outs, name, op = [], [], "", ""
        for f2, _, s2, e2 in _fields(b, s, e):
            if f2 == 1:
                ins.append(b[s2:e2].decode())
            elif f2 == 2:
                outs.append(b[s2:e2].decode())
            elif f2 == 3:
                name = b[s2:e2].decode()
            elif f2 == 4:
                op = b[s2:e2].decode()
        out.append((op, name, ins, outs))
    return out


def graph_outputs(b):
    gs, ge, _ = graph_span(b)
    names = []
    for f, _, s, e in _fields(b, gs, ge):
        if f == 12:
            names += [b[s2:e2].decode() for f2, _, s2, e2 in _fields(b, s, e) if f2 == 1]
    return names


def add_output(b, tensor, elem_type=1):
    """Returns the model bytes with `tensor` added as a graph output (elem_type 1 = float, 7 = int64)."""
    gs, ge, k0 = graph_span(b)
    tensor_type = _enc_varint(1 << 3 | 0) + _enc_varint(elem_type)          # TypeProto.Tensor.elem_type
    type_proto = _ld(1, tensor_type)                                         # TypeProto.tensor_type
    vi = _ld(1, tensor.encode()) + _ld(2, type_proto)                        # ValueInfoProto name, type
    graph = b[gs:ge] + _ld(12, vi)                                           # GraphProto.output
    return b[:k0] + _ld(7, graph) + b[ge:]
