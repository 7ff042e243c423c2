"""Writes the hostile-input corpus and the fuzzing seeds of squall.networks.reliability.

Run with Debian's Python (it has torch, onnx and PIL):
    /usr/bin/python3 networks/src/test/python/make_hostile_corpus.py

Output, committed with this script:
    networks/src/test/resources/hostile/<name>     malformed or malicious files, one fault each
    networks/src/test/resources/hostile/corpus.tsv what each file is and what Squall must do with it:
                                                   "refuse" (a SquallException naming the file) or
                                                   "load" (NaN/Inf weights: loaded, and reported)
    networks/src/test/resources/hostile/seeds/     small valid files, the fuzzer's starting points
Inputs the fuzzer (FuzzTest) found are kept as they are in hostile/fuzz/, which this script leaves alone.

Valid containers come from torch.save, onnx.helper and PIL (so nobody here wrote their layout);
faults are then written byte by byte from the format specs (pickletools, onnx.proto, the PNG, JPEG,
BMP and GIF specs). Payloads that would run code try to create MARKER; the tests check it never
appears.
"""
import io
import os
import struct
import sys
import zipfile
import zlib

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "hostile")
SEEDS = os.path.join(ROOT, "seeds")
MARKER = "/tmp/squall-hostile-marker"
COMMAND = "touch " + MARKER

rows = []


def put(name, data, expect, what):
    with open(os.path.join(ROOT, name), "wb") as f:
        f.write(data)
    rows.append((name, expect, what))


def seed(name, data):
    with open(os.path.join(SEEDS, name), "wb") as f:
        f.write(data)


# ---- safetensors -------------------------------------------------------------------------------

def safetensors(header, data):
    h = header.encode("utf-8") if isinstance(header, str) else header
    return struct.pack("<Q", len(h)) + h + data


def st_entry(dtype, shape, begin, end):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (dtype, shape, begin, end)


F32x2 = struct.pack("<2f", 1.5, -2.25)
VALID_ST = safetensors('{"w":' + st_entry("F32", "[2]", 0, 8) + "}", F32x2)


def safetensors_cases():
    put("st-truncated-length.safetensors", VALID_ST[:5], "refuse", "5 bytes: not even the header length")
    put("st-header-beyond-file.safetensors", struct.pack("<Q", 1 << 40) + VALID_ST[8:], "refuse",
        "header length 2^40 in a file of 40 bytes")
    put("st-header-negative.safetensors", struct.pack("<q", -16) + VALID_ST[8:], "refuse",
        "header length -16 (0xfff...f0)")
    put("st-header-truncated.safetensors", VALID_ST[:20], "refuse", "header cut in the middle")
    put("st-data-truncated.safetensors", VALID_ST[:-4], "refuse", "the tensor's bytes cut short")
    put("st-offsets-out-of-range.safetensors",
        safetensors('{"w":' + st_entry("F32", "[2]", 0, 1 << 32) + "}", F32x2), "refuse",
        "data_offsets end at 4 GB in a 1 KB file")
    put("st-claims-4gb-tensor.safetensors",
        safetensors('{"w":' + st_entry("F32", "[1073741824]", 0, 1 << 32) + "}", F32x2 * 100), "refuse",
        "a 4 GB tensor (2^30 floats) declared in an 850-byte file: refused before allocating")
    put("st-offsets-negative.safetensors",
        safetensors('{"w":' + st_entry("F32", "[2]", -8, 0) + "}", F32x2), "refuse", "negative data offset")
    put("st-offsets-overlap.safetensors",
        safetensors('{"a":' + st_entry("F32", "[2]", 0, 8) + ',"b":' + st_entry("F32", "[2]", 4, 12) + "}",
                    F32x2 + b"\0" * 4), "refuse", "two tensors share bytes 4-8")
    put("st-offsets-gap.safetensors",
        safetensors('{"a":' + st_entry("F32", "[1]", 4, 8) + "}", F32x2), "refuse",
        "unused bytes before the first tensor")
    put("st-shape-overflow.safetensors",
        safetensors('{"a":' + st_entry("F32", "[4294967296,4294967296,16]", 0, 8) + "}", F32x2), "refuse",
        "shape whose element count overflows 64 bits")
    put("st-shape-over-int.safetensors",
        safetensors('{"a":' + st_entry("F32", "[2147483647,2]", 0, 8) + "}", F32x2), "refuse",
        "shape of 2^32 elements, past what a Java array holds")
    put("st-shape-negative.safetensors",
        safetensors('{"a":' + st_entry("F32", "[-2]", 0, 8) + "}", F32x2), "refuse", "negative dimension")
    put("st-shape-bignum.safetensors",
        safetensors('{"a":' + st_entry("F32", "[123456789012345678901234567890]", 0, 8) + "}", F32x2),
        "refuse", "a dimension past 64 bits")
    put("st-dtype-unknown.safetensors",
        safetensors('{"a":' + st_entry("F8_E4M3", "[8]", 0, 8) + "}", F32x2), "refuse", "unknown dtype F8_E4M3")
    put("st-dtype-complex.safetensors",
        safetensors('{"a":' + st_entry("C64", "[1]", 0, 8) + "}", F32x2), "refuse", "complex dtype")
    put("st-dtype-int-weight.safetensors",
        safetensors('{"a":' + st_entry("I64", "[1]", 0, 8) + "}", F32x2), "refuse", "an int64 weight")
    put("st-header-not-json.safetensors", safetensors("{not json at all}", F32x2), "refuse", "header is not JSON")
    put("st-header-not-utf8.safetensors", safetensors(b'{"\xff\xfe":1}', b""), "refuse", "header is not UTF-8")
    put("st-header-array.safetensors", safetensors("[1,2,3]", b""), "refuse", "header is a JSON array")
    put("st-header-deep.safetensors", safetensors('{"a":' + "[" * 5000 + "]" * 5000 + "}", b""), "refuse",
        "5000 nested JSON arrays (a recursive parser would overflow its stack)")
    put("st-duplicate-key.safetensors",
        safetensors('{"w":' + st_entry("F32", "[2]", 0, 8) + ',"w":' + st_entry("F32", "[2]", 0, 8) + "}", F32x2),
        "refuse", "the same tensor name twice")
    put("st-metadata-not-strings.safetensors", safetensors('{"__metadata__":{"n":[1,2]}}', b""), "refuse",
        "__metadata__ holding a list")
    put("st-entry-not-object.safetensors", safetensors('{"w":"F32"}', b""), "refuse", "an entry that is a string")
    nan_inf = struct.pack("<4f", float("nan"), float("inf"), float("-inf"), 1.0)
    put("st-nan-inf.safetensors", safetensors('{"w":' + st_entry("F32", "[4]", 0, 16) + "}", nan_inf), "load",
        "NaN and infinite weights: loaded, with a warning")
    seed("valid.safetensors", VALID_ST)
    f16 = np.array([0.5, -1, 2, 65504], dtype=np.float16).tobytes()
    seed("valid-f16.safetensors", safetensors(
        '{"__metadata__":{"format":"pt"},"a.weight":' + st_entry("F16", "[2,2]", 0, 8) + ',"b.bias":'
        + st_entry("F32", "[2]", 8, 16) + "}", f16 + F32x2))


# ---- pickles -----------------------------------------------------------------------------------

def binunicode(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def short_binunicode(s):
    b = s.encode("utf-8")
    return b"\x8c" + bytes([len(b)]) + b


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def torch_zip(state_dict, legacy=False):
    buf = io.BytesIO()
    torch.save(state_dict, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def replace_zip_entry(data, suffix, new_bytes):
    """Rewrites a torch zip with the entry ending in `suffix` replaced, removed (None) or added."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    found = False
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            hit = info.filename.endswith(suffix)
            found |= hit
            body = new_bytes if hit else src.read(info.filename)
            if body is not None:
                dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), body)
        if not found and new_bytes is not None:
            folder = src.namelist()[0].split("/")[0]
            dst.writestr(zipfile.ZipInfo(folder + "/" + suffix, date_time=(1980, 1, 1, 0, 0, 0)), new_bytes)
    return out.getvalue()


def forge_central_size(data, suffix, size):
    """Sets the compressed and uncompressed sizes of an entry in the central directory."""
    b = bytearray(data)
    name = suffix.encode()
    i = 0
    while True:
        i = b.find(b"PK\x01\x02", i)
        if i < 0:
            return bytes(b)
        n = struct.unpack_from("<H", b, i + 28)[0]
        if bytes(b[i + 46:i + 46 + n]).endswith(name):
            struct.pack_into("<II", b, i + 20, size, size)
        i += 4


def legacy_with_pickle(pickle_bytes):
    """A legacy file: magic, protocol, sys info pickles as torch writes them, then `pickle_bytes`."""
    real = torch_zip({"w": torch.tensor([1.5, -2.25])}, legacy=True)
    # The first three pickles are fixed; find where the fourth starts by parsing with pickletools.
    import pickletools
    at = 0
    for _ in range(3):
        for op, arg, pos in pickletools.genops(real[at:]):
            if op.name == "STOP":
                at += pos + 1
                break
    return real[:at] + pickle_bytes + b"\x80\x02]q\x00.", real


def pickle_cases():
    small = {"w": torch.tensor([1.5, -2.25]), "b": torch.tensor([[0.5, 1.0], [2.0, 3.0]])}
    valid_zip = torch_zip(small)
    valid_legacy = torch_zip(small, legacy=True)
    seed("valid-zip.pth", valid_zip)
    seed("valid-legacy.pth", valid_legacy)
    seed("valid-zip-f16.pth", torch_zip({"conv.weight": torch.ones(2, 1, 3, 3).half(),
                                         "bn.num_batches_tracked": torch.tensor(3)}))

    payloads = {
        "os-system-reduce": b"\x80\x02" + glob("os", "system") + binunicode(COMMAND) + b"\x85R.",
        "builtins-eval-reduce": b"\x80\x02" + glob("builtins", "eval")
        + binunicode("__import__('os').system('" + COMMAND + "')") + b"\x85R.",
        "builtins-exec-reduce": b"\x80\x02" + glob("builtins", "exec")
        + binunicode("import os; os.system('" + COMMAND + "')") + b"\x85R.",
        "subprocess-popen-reduce": b"\x80\x02" + glob("subprocess", "Popen")
        + b"(" + binunicode("touch") + binunicode(MARKER) + b"l\x85R.",
        "posix-system-stackglobal": b"\x80\x04" + short_binunicode("posix") + short_binunicode("system")
        + b"\x93" + short_binunicode(COMMAND) + b"\x85R.",
        "nt-system-stackglobal": b"\x80\x04" + short_binunicode("nt") + short_binunicode("system")
        + b"\x93" + short_binunicode(COMMAND) + b"\x85R.",
        "inst-os-system": b"\x80\x02(" + binunicode(COMMAND) + b"ios\nsystem\n.",
        "obj-os-system": b"\x80\x02(" + glob("os", "system") + binunicode(COMMAND) + b"o.",
        "build-setstate": b"\x80\x02" + glob("collections", "OrderedDict") + b")R" + b"N}"
        + binunicode("__setstate__") + glob("os", "system") + b"s\x86b.",
        "newobj-popen": b"\x80\x02" + glob("subprocess", "Popen") + b"(" + binunicode(COMMAND) + b"t\x81.",
        "reduce-on-string": b"\x80\x02" + binunicode("os.system") + binunicode(COMMAND) + b"\x85R.",
        "torch-load-nested": b"\x80\x02" + glob("torch", "load") + binunicode("/dev/zero") + b"\x85R.",
        "getattr-chain": b"\x80\x02" + glob("builtins", "getattr") + glob("collections", "OrderedDict")
        + binunicode("__init__") + b"\x86R.",
        "ext-opcode": b"\x80\x02\x82\x01.",
        "append-none": b"\x80\x02]Na.",  # fuzz find: None appended to a list
        "setitem-none": b"\x80\x02}NNs.",  # None as a dict key and value
    }
    for name, pickle in payloads.items():
        put("pz-" + name + ".pth", replace_zip_entry(valid_zip, "data.pkl", pickle), "refuse",
            "zip checkpoint whose data.pkl tries " + name.replace("-", " "))
    for name in ["os-system-reduce", "builtins-eval-reduce", "posix-system-stackglobal", "inst-os-system"]:
        put("pl-" + name + ".pth", legacy_with_pickle(payloads[name])[0], "refuse",
            "legacy checkpoint whose state dict pickle tries " + name.replace("-", " "))

    deep = b"\x80\x02" + b"]" * 1000 + b"a" * 999 + b"."
    put("pz-nested-lists.pth", replace_zip_entry(valid_zip, "data.pkl", deep), "refuse", "1000 nested lists")
    marks = b"\x80\x02" + b"(" * 100000 + b"."
    put("pz-nested-marks.pth", replace_zip_entry(valid_zip, "data.pkl", marks), "refuse", "100000 open MARKs")
    cycle = b"\x80\x02]q\x00" + b"h\x00a" * 200 + b"."
    put("pz-cyclic-list.pth", replace_zip_entry(valid_zip, "data.pkl", cycle), "refuse",
        "a list appended to itself 200 times through the memo")
    cyclic_dict = b"\x80\x02}q\x00" + binunicode("self") + b"h\x00s."
    put("pz-cyclic-dict.pth", replace_zip_entry(valid_zip, "data.pkl", cyclic_dict), "refuse",
        "a dict that contains itself")
    # Billion laughs: each tuple holds ten references to the previous one; 10^30 leaves if expanded.
    laughs = b"\x80\x02}" + binunicode("w") + binunicode("lol") + b"q\x000"
    for level in range(30):
        laughs += b"(" + (b"h" + bytes([level])) * 10 + b"tq" + bytes([level + 1]) + (b"0" if level < 29 else b"")
    laughs += b"s."
    put("pz-billion-laughs.pth", replace_zip_entry(valid_zip, "data.pkl", laughs), "refuse",
        "nested tuples sharing children: 10^30 leaves if anything expanded them")
    put("pz-huge-string.pth", replace_zip_entry(valid_zip, "data.pkl", b"\x80\x04\x8d" + struct.pack("<q", 1 << 62)
                                                + b"."), "refuse", "a string of 2^62 bytes declared")
    put("pz-huge-long.pth", replace_zip_entry(valid_zip, "data.pkl", b"\x80\x02\x8b" + struct.pack("<i", 1 << 30)
                                              + b"\0" * 16 + b"."), "refuse", "a LONG4 of 1 GB declared")
    put("pz-truncated.pth", valid_zip[:len(valid_zip) // 2], "refuse", "a zip checkpoint cut in half")
    put("pz-empty-zip.pth", b"PK\x05\x06" + b"\0" * 18, "refuse", "an empty zip archive")
    put("pz-huge-entry-size.pth", forge_central_size(valid_zip, "data/0", 0xFFFFFFF0), "refuse",
        "central directory declares a 4 GB storage entry")
    put("pz-huge-pickle-size.pth", forge_central_size(valid_zip, "data.pkl", 0x7FFFFFF0), "refuse",
        "central directory declares a 2 GB data.pkl")
    put("pz-missing-storage.pth", replace_zip_entry(valid_zip, "data/0", None), "refuse",
        "a storage entry the pickle names is absent")
    put("pz-short-storage.pth", replace_zip_entry(valid_zip, "data/0", b"\0" * 4), "refuse",
        "a storage entry shorter than the pickle says")
    put("pz-no-pickle.pth", replace_zip_entry(valid_zip, "data.pkl", None), "refuse", "no data.pkl entry")
    put("pz-big-endian.pth", replace_zip_entry(valid_zip, "byteorder", b"big"), "refuse",
        "byteorder says big-endian")
    numel = b"\x80\x02" + glob("collections", "OrderedDict") + b")R" + binunicode("w") \
        + glob("torch._utils", "_rebuild_tensor_v2") + b"((" + binunicode("storage") + glob("torch", "FloatStorage") \
        + binunicode("0") + binunicode("cpu") + b"\x8a\x08" + struct.pack("<q", 1 << 60) + b"tQK\x00(J" \
        + struct.pack("<i", 2) + b"t(K\x01t\x89" + glob("collections", "OrderedDict") + b")RtRs."
    put("pz-numel-2e60.pth", replace_zip_entry(valid_zip, "data.pkl", numel), "refuse",
        "a storage of 2^60 floats declared")
    # A deflated pickle that inflates past the size the directory declares.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(1980, 1, 1, 0, 0, 0)),
                   b"\x80\x02" + b"N0" * 2_000_000 + b"N.", compress_type=zipfile.ZIP_DEFLATED)
    put("pz-deflate-bomb.pth", forge_central_size(bomb.getvalue(), "data.pkl", 100), "refuse",
        "a deflated data.pkl of 4 MB whose directory says 100 bytes")
    put("pz-nan-inf.pth", torch_zip({"w": torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0])}), "load",
        "NaN and infinite weights: loaded, with a warning")

    put("pl-truncated.pth", valid_legacy[:len(valid_legacy) - 7], "refuse", "a legacy checkpoint cut short")
    put("pl-magic-only.pth", valid_legacy[:16], "refuse", "only the magic number")
    bad_proto = bytearray(valid_legacy)
    i = bad_proto.find(b"M\xe9\x03")  # BININT2 1001, the legacy protocol version
    bad_proto[i + 1] = 0xea
    put("pl-protocol-version.pth", bytes(bad_proto), "refuse", "legacy protocol version 1002")
    count = bytearray(torch_zip({"w": torch.tensor([1.5, -2.25])}, legacy=True))
    struct.pack_into("<q", count, len(count) - 8 - 8, 1 << 40)  # the storage's element count, before its 8 bytes
    put("pl-storage-count.pth", bytes(count), "refuse", "a storage records 2^40 elements")
    huge, _ = legacy_with_pickle(numel)
    put("pl-numel-2e60.pth", huge, "refuse", "legacy pickle declares a storage of 2^60 floats")
    put("pl-nan-inf.pth", torch_zip({"w": torch.tensor([float("nan"), float("inf"), 1.0])}, legacy=True), "load",
        "legacy NaN and infinite weights: loaded, with a warning")


# ---- ONNX -------------------------------------------------------------------------------------

def tiny_onnx(weight=None, opset=13):
    w = weight if weight is not None else np.arange(2 * 3 * 1 * 1, dtype=np.float32).reshape(2, 3, 1, 1) / 10
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv"), helper.make_node("Relu", ["y"], ["z"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 4, 4])],
        [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="squall-corpus")


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire, payload):
    tag = varint(number << 3 | wire)
    if wire == 2:
        return tag + varint(len(payload)) + payload
    return tag + payload


def onnx_cases():
    model = tiny_onnx()
    valid = model.SerializeToString()
    seed("valid.onnx", valid)
    graph = model.graph.SerializeToString()
    opset = model.opset_import[0].SerializeToString()
    head = field(1, 0, varint(8)) + field(8, 2, opset)

    put("ox-empty.onnx", b"", "refuse", "an empty file")
    put("ox-not-protobuf.onnx", b"this is not a protobuf file\n" * 4, "refuse", "text")
    put("ox-truncated.onnx", valid[:len(valid) * 2 // 3], "refuse", "a model cut at two thirds")
    put("ox-length-beyond.onnx", head + bytes([7 << 3 | 2]) + varint(1 << 30) + graph,
        "refuse", "the graph field claims 1 GB")
    put("ox-length-negative.onnx", head + bytes([7 << 3 | 2]) + varint(-5) + graph, "refuse",
        "the graph field has a negative length")
    put("ox-wrong-wire-type.onnx", field(1, 2, b"\x08") + field(8, 2, opset) + field(7, 2, graph), "refuse",
        "ir_version sent as a length-delimited field")
    put("ox-graph-as-varint.onnx", head + field(7, 0, varint(12345)), "refuse", "the graph sent as a varint")
    put("ox-varint-overlong.onnx", b"\x08" + b"\xff" * 12 + b"\x01" + field(7, 2, graph), "refuse",
        "a 13-byte varint")
    put("ox-no-graph.onnx", head, "refuse", "a model with no graph")
    dims = field(1, 2, varint(1 << 31)) + b"\x01\x02"
    tensor = field(8, 2, b"w") + field(2, 0, varint(1)) + dims
    put("ox-packed-dims-huge.onnx", head + field(7, 2, field(5, 2, tensor)), "refuse",
        "packed dims claim 2 GB of varints in a few bytes")
    many = field(1, 2, b"".join(varint(2) for _ in range(100)))  # rank 100: 2^100 elements
    over = field(8, 2, b"w") + field(2, 0, varint(1)) + many + field(9, 2, b"\0" * 8)
    put("ox-dims-overflow.onnx", head + field(7, 2, graph + field(5, 2, over)), "refuse",
        "an initializer of rank 100 (2^100 elements)")
    big = numpy_helper.from_array(np.zeros((1,), np.float32), "w")
    del big.dims[:]
    big.dims.extend([1 << 20, 1 << 10])
    m = tiny_onnx()
    m.graph.initializer[0].CopyFrom(big)
    put("ox-raw-data-short.onnx", m.SerializeToString(), "refuse", "a 4 GB initializer holding 4 bytes")
    neg = tiny_onnx()
    del neg.graph.initializer[0].dims[:]
    neg.graph.initializer[0].dims.extend([2, -3, 1, 1])
    put("ox-negative-dim.onnx", neg.SerializeToString(), "refuse", "an initializer with a negative dimension")
    ext = tiny_onnx()
    t = ext.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in [("location", "../../../../../../etc/passwd")]:
        t.external_data.add(key=k, value=v)
    put("ox-external-escape.onnx", ext.SerializeToString(), "refuse", "external data at ../../etc/passwd")
    ext.graph.initializer[0].external_data[0].value = "/etc/passwd"
    put("ox-external-absolute.onnx", ext.SerializeToString(), "refuse", "external data at /etc/passwd")
    ext.graph.initializer[0].external_data[0].value = "weights\0.bin"
    put("ox-external-nul.onnx", ext.SerializeToString(), "refuse", "external data named with a NUL byte (fuzz find)")
    ext.graph.initializer[0].external_data[0].value = "missing.bin"
    put("ox-external-missing.onnx", ext.SerializeToString(), "refuse", "external data file that does not exist")
    ext.graph.initializer[0].external_data[0].value = "ox-external-offset.onnx"
    ext.graph.initializer[0].external_data.add(key="offset", value=str(1 << 62))
    ext.graph.initializer[0].external_data.add(key="length", value=str(1 << 62))
    put("ox-external-offset.onnx", ext.SerializeToString(), "refuse", "external offset and length of 2^62")
    nested = b""
    for _ in range(200):
        nested = field(6, 2, field(1, 2, field(5, 2, field(6, 2, nested))))  # attribute.g > node > attribute
    put("ox-deep-nesting.onnx", head + field(7, 2, field(1, 2, field(5, 2, field(1, 2, b"g") + nested))), "refuse",
        "subgraphs nested 200 deep")
    custom = tiny_onnx()
    custom.graph.node[1].op_type = "RunShellCommand"
    custom.graph.node[1].domain = "evil.example"
    put("ox-unknown-op.onnx", custom.SerializeToString(), "refuse", "an op Squall does not have, in a custom domain")
    huge_in = tiny_onnx()
    huge_in.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 1 << 40
    put("ox-input-dim-2e40.onnx", huge_in.SerializeToString(), "refuse", "a graph input of height 2^40")
    reshape = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["z"])], "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 2])],
        [numpy_helper.from_array(np.array([2, 2], np.int64), "s")])
    rm = helper.make_model(reshape, opset_imports=[helper.make_opsetid("", 13)])
    del rm.graph.initializer[0].dims[:]
    rm.graph.initializer[0].dims.extend([1 << 32, 1 << 32])
    put("ox-int-tensor-overflow.onnx", rm.SerializeToString(), "refuse",
        "a Reshape shape tensor of 2^64 int64 elements")
    wrong_type = tiny_onnx()
    wrong_type.graph.initializer[0].data_type = 99
    put("ox-unknown-dtype.onnx", wrong_type.SerializeToString(), "refuse", "an initializer of data type 99")
    bad_attr = tiny_onnx()
    bad_attr.graph.node[0].attribute.extend([helper.make_attribute("strides", [0, -7])])
    put("ox-conv-bad-strides.onnx", bad_attr.SerializeToString(), "refuse", "Conv strides [0, -7]")
    group = tiny_onnx()
    group.graph.node[0].attribute.extend([helper.make_attribute("group", 1 << 40)])
    put("ox-conv-group-2e40.onnx", group.SerializeToString(), "refuse", "Conv group 2^40")
    flat = tiny_onnx(np.arange(6, dtype=np.float32))
    put("ox-conv-weight-rank-1.onnx", flat.SerializeToString(), "refuse",
        "a Conv weight of rank 1 and no kernel_shape (fuzz find)")
    cyc = tiny_onnx()
    cyc.graph.node[0].input[0] = "z"
    put("ox-cycle.onnx", cyc.SerializeToString(), "refuse", "a node reads the graph's own output (a cycle)")
    nan = tiny_onnx(np.array([np.nan, np.inf, -np.inf, 1, 2, 3], np.float32).reshape(2, 3, 1, 1))
    put("ox-nan-inf.onnx", nan.SerializeToString(), "load", "NaN and infinite weights: loaded")


# ---- images -----------------------------------------------------------------------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, height, idat, color=2, depth=8):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def pil_bytes(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def image_cases():
    rgb = Image.fromarray((np.arange(16 * 12 * 3) % 251).astype(np.uint8).reshape(12, 16, 3))
    valid_png = pil_bytes(rgb, "PNG")
    valid_jpg = pil_bytes(rgb, "JPEG", quality=90)
    valid_bmp = pil_bytes(rgb, "BMP")
    valid_gif = pil_bytes(rgb.convert("P"), "GIF")
    for name, data in [("valid.png", valid_png), ("valid.jpg", valid_jpg), ("valid.bmp", valid_bmp),
                       ("valid.gif", valid_gif), ("valid-gray.png", pil_bytes(rgb.convert("L"), "PNG")),
                       ("valid-rgba.png", pil_bytes(rgb.convert("RGBA"), "PNG"))]:
        seed(name, data)

    tiny = zlib.compress(b"\0" * 64)
    put("img-png-100000x100000.png", png(100000, 100000, tiny), "refuse",
        "a PNG header of 100000x100000 (30 GB of pixels) over 64 bytes of data")
    put("img-png-10000x10000.png", png(10000, 10000, tiny), "refuse",
        "a 100-megapixel PNG (at the size limit) whose data is 64 bytes")
    put("img-png-0x0.png", png(0, 0, tiny), "refuse", "a PNG of 0x0 pixels")
    put("img-png-2e31.png", png(0x80000000, 1, tiny), "refuse", "a PNG width of 2^31 (negative as an int)")
    put("img-png-truncated.png", valid_png[:len(valid_png) // 2], "refuse", "a PNG cut in half")
    put("img-png-corrupt-zlib.png", png(16, 12, b"\x78\x9c" + b"\xde\xad\xbe\xef" * 20), "refuse",
        "IDAT that is not zlib data")
    put("img-png-short-idat.png", png(16, 12, zlib.compress(b"\0" * 50)), "refuse",
        "IDAT holding 50 of 588 bytes")
    put("img-png-bad-depth.png", png(16, 12, tiny, color=2, depth=7), "refuse", "bit depth 7")
    put("img-png-bad-color.png", png(16, 12, tiny, color=5), "refuse", "colour type 5")
    put("img-png-header-only.png", valid_png[:33], "refuse", "signature and IHDR only")
    huge_chunk = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 12, 8, 2, 0, 0, 0)) \
        + struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + b"a\0b"
    put("img-png-huge-chunk.png", huge_chunk, "refuse", "a tEXt chunk claiming 2 GB")

    put("img-jpg-truncated.jpg", valid_jpg[:len(valid_jpg) // 2], "refuse", "a JPEG cut in half")
    sof = valid_jpg.find(b"\xff\xc0")
    huge_jpg = bytearray(valid_jpg)
    struct.pack_into(">HH", huge_jpg, sof + 5, 65535, 65535)
    put("img-jpg-65535x65535.jpg", bytes(huge_jpg), "refuse", "a JPEG frame of 65535x65535")
    zero_jpg = bytearray(valid_jpg)
    struct.pack_into(">HH", zero_jpg, sof + 5, 0, 16)
    put("img-jpg-zero-height.jpg", bytes(zero_jpg), "refuse", "a JPEG frame of height 0")
    put("img-jpg-soi-only.jpg", b"\xff\xd8\xff\xd9", "refuse", "start and end of image, nothing between")
    garbage = bytearray(valid_jpg)
    sos = garbage.find(b"\xff\xda")
    for k in range(sos + 20, len(garbage) - 2, 7):
        garbage[k:k + 2] = b"\xff\xc8"  # a reserved marker (JPG extension) inside the scan
    put("img-jpg-corrupt-scan.jpg", bytes(garbage), "refuse", "entropy-coded data overwritten with markers")
    bad_table = bytearray(valid_jpg)
    dqt = bad_table.find(b"\xff\xdb")
    struct.pack_into(">H", bad_table, dqt + 2, 0xFFFF)
    put("img-jpg-bad-segment-length.jpg", bytes(bad_table), "refuse", "a DQT segment length of 65535")

    def bmp_header(width, height, bits=24, offset=54, size=0):
        return b"BM" + struct.pack("<IHHI", 54 + size, 0, 0, offset) \
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, size, 2835, 2835, 0, 0)
    put("img-bmp-100000x100000.bmp", bmp_header(100000, 100000) + b"\0" * 64, "refuse",
        "a BMP header of 100000x100000")
    put("img-bmp-truncated.bmp", valid_bmp[:len(valid_bmp) - 200], "refuse", "BMP pixel data cut short")
    put("img-bmp-negative-width.bmp", bmp_header(-16, 12) + b"\0" * 600, "refuse", "a negative BMP width")
    put("img-bmp-bad-offset.bmp", bmp_header(16, 12, offset=0x7FFFFFF0) + b"\0" * 600, "refuse",
        "pixel data offset 2 GB")
    put("img-bmp-bad-bits.bmp", bmp_header(16, 12, bits=13) + b"\0" * 600, "refuse", "13 bits per pixel")

    def gif_header(width, height):
        return b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    image_descriptor = b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00;"
    put("img-gif-65535x65535.gif", gif_header(65535, 65535) + image_descriptor, "refuse",
        "a GIF screen and frame of 65535x65535")
    put("img-gif-truncated.gif", valid_gif[:len(valid_gif) // 2], "refuse", "a GIF cut in half")
    lzw = bytearray(valid_gif)
    start = lzw.find(b",") + 10
    for k in range(start + 3, min(len(lzw) - 2, start + 60)):
        lzw[k] ^= 0x5A
    put("img-gif-corrupt-lzw.gif", bytes(lzw), "refuse", "LZW data scrambled")
    put("img-gif-no-frames.gif", gif_header(16, 12) + b";", "refuse", "a GIF with no image")
    put("img-not-an-image.png", b"<html><body>404 Not Found</body></html>\n", "refuse",
        "an HTML error page saved as .png")


def main():
    os.makedirs(SEEDS, exist_ok=True)
    for d in (ROOT, SEEDS):
        for f in os.listdir(d):
            if os.path.isfile(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
    torch.manual_seed(0)
    safetensors_cases()
    pickle_cases()
    onnx_cases()
    image_cases()
    with open(os.path.join(ROOT, "corpus.tsv"), "w") as f:
        f.write("# file\texpect\twhat it holds (written by networks/src/test/python/make_hostile_corpus.py)\n")
        for name, expect, what in rows:
            f.write(name + "\t" + expect + "\t" + what + "\n")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(ROOT) for f in fs)
    print(len(rows), "corpus files,", len(os.listdir(SEEDS)), "seeds,", total, "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
