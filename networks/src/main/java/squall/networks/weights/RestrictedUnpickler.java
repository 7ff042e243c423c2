package squall.networks.weights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import squall.api.SquallException;

/**
 * Reads the pickle of a PyTorch checkpoint without Python's object model: a small stack machine
 * for the opcodes {@code torch.save} emits for a state dict. A pickle is a program (GLOBAL imports
 * anything, REDUCE calls it), so this machine accepts a fixed list of globals, refuses any other at
 * the GLOBAL or STACK_GLOBAL opcode before anything is built, and interprets the few allowed
 * "calls" itself: {@code OrderedDict()} becomes a {@link LinkedHashMap}, {@code _rebuild_tensor_v2}
 * a {@link TensorRef}, a persistent id a {@link StorageRef}. Nothing from the file is executed.
 *
 * <p>Untrusted sizes are checked before use: string lengths against the bytes left, container
 * nesting against {@link #MAX_NESTING}, the stack and memo against {@link #MAX_ENTRIES}.
 */
final class RestrictedUnpickler {
    static final int MAX_NESTING = 64;
    /** Stack and memo bound: a state dict needs about 15 memo entries per tensor. */
    static final int MAX_ENTRIES = 1 << 20;
    private static final int MAX_GLOBAL_NAME = 256;

    /** A storage a tensor points into; for the legacy format's storage views, a window of it. */
    record StorageRef(String key, DType dtype, long numel, long viewOffset, long viewSize) {}

    /** {@code torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)}, not yet read. */
    record TensorRef(StorageRef storage, long offset, long[] size, long[] stride) {}

    /** A Python tuple. */
    record Tuple(List<Object> items) {}

    private enum Kind { ORDERED_DICT, REBUILD_TENSOR_V2, REBUILD_TENSOR, REBUILD_PARAMETER, STORAGE, DTYPE }

    /** An allowed global: the only things a pickle may name. */
    private record Global(String qualifiedName, Kind kind, DType dtype) {}

    private static final Map<String, Global> ALLOWED = allowedGlobals();

    private static Map<String, Global> allowedGlobals() {
        Map<String, Global> m = new LinkedHashMap<>();
        add(m, "collections.OrderedDict", Kind.ORDERED_DICT, null);
        add(m, "torch._utils._rebuild_tensor_v2", Kind.REBUILD_TENSOR_V2, null);
        add(m, "torch._utils._rebuild_tensor", Kind.REBUILD_TENSOR, null);
        add(m, "torch._utils._rebuild_parameter", Kind.REBUILD_PARAMETER, null);
        for (String storage : List.of("FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage",
                "LongStorage", "IntStorage")) {
            add(m, "torch." + storage, Kind.STORAGE, DType.fromTorchStorage(storage));
        }
        for (String dtype : List.of("float32", "float16", "bfloat16", "float64", "int64", "int32")) {
            add(m, "torch." + dtype, Kind.DTYPE, DType.fromTorchDtype(dtype));
        }
        return Map.copyOf(m);
    }

    private static void add(Map<String, Global> m, String name, Kind kind, DType dtype) {
        m.put(name, new Global(name, kind, dtype));
    }

    /** The names this unpickler accepts, for error messages. */
    static String allowedNames() {
        return ALLOWED.keySet().stream().sorted().collect(Collectors.joining(", "));
    }

    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_BE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final MemorySegment in;
    private final String source;
    private long pos;
    private long opAt;
    private final List<Object> stack = new ArrayList<>();
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();
    /** Nesting depth of every container built so far; leaves are depth 0. */
    private final Map<Object, Integer> depth = new IdentityHashMap<>();

    /**
     * @param in     the bytes holding the pickle
     * @param start  where it starts
     * @param source names the pickle in messages, e.g. {@code "resnet.pth (archive/data.pkl)"}
     */
    RestrictedUnpickler(MemorySegment in, long start, String source) {
        this.in = in;
        this.pos = start;
        this.source = source;
    }

    /** The offset just past the STOP of the last pickle read (where the next one starts). */
    long position() {
        return pos;
    }

    /** Runs the pickle to its STOP opcode and returns the object it built. */
    Object load() {
        stack.clear();
        marks.clear();
        memo.clear();
        depth.clear();
        while (true) {
            opAt = pos;
            int op = u8();
            switch (op) {
                case 0x80 -> { // PROTO
                    int version = u8();
                    if (version < 2 || version > 5) {
                        throw bad("pickle protocol " + version + "; PyTorch writes 2 to 5");
                    }
                }
                case 0x95 -> { // FRAME: a length prefix for buffered reading; the bytes follow inline
                    long frame = i64();
                    if (frame < 0 || frame > in.byteSize() - pos) {
                        throw bad("FRAME of " + frame + " bytes runs past the end of the data");
                    }
                }
                case '.' -> { // STOP
                    if (stack.size() != 1 || !marks.isEmpty()) {
                        throw bad("STOP with " + stack.size() + " objects on the stack and " + marks.size()
                                + " open MARKs (expected exactly one object)");
                    }
                    return stack.getFirst();
                }
                case '(' -> { // MARK
                    if (marks.size() >= MAX_NESTING) {
                        throw bad("more than " + MAX_NESTING + " nested MARKs");
                    }
                    marks.add(stack.size());
                }
                case '}' -> push(container(new LinkedHashMap<>()));
                case ']' -> push(container(new ArrayList<>()));
                case ')' -> push(tuple(List.of()));
                case 't' -> push(tuple(popMark()));
                case 0x85 -> push(tuple(popN(1)));
                case 0x86 -> push(tuple(popN(2)));
                case 0x87 -> push(tuple(popN(3)));
                case 's' -> { // SETITEM
                    Object value = pop();
                    Object key = pop();
                    putItems(Arrays.asList(key, value)); // None is a valid key or value: no List.of
                }
                case 'u' -> putItems(popMark()); // SETITEMS
                case 'a' -> appendItems(Arrays.asList(pop())); // APPEND
                case 'e' -> appendItems(popMark()); // APPENDS
                case '0' -> pop(); // POP
                case '1' -> popMark(); // POP_MARK
                case 'X' -> push(utf8(u32())); // BINUNICODE
                case 0x8c -> push(utf8(u8())); // SHORT_BINUNICODE
                case 0x8d -> push(utf8(i64())); // BINUNICODE8
                case 'J' -> push((long) in.get(I32_LE, take(4))); // BININT
                case 'K' -> push((long) u8()); // BININT1
                case 'M' -> push((long) (u8() | u8() << 8)); // BININT2
                case 0x8a -> push(longN(u8())); // LONG1
                case 0x8b -> push(longN(in.get(I32_LE, take(4)))); // LONG4
                case 'G' -> push(in.get(F64_BE, take(8))); // BINFLOAT
                case 0x88 -> push(Boolean.TRUE); // NEWTRUE
                case 0x89 -> push(Boolean.FALSE); // NEWFALSE
                case 'N' -> push(null); // NONE
                case 'q' -> memoPut(u8()); // BINPUT
                case 'r' -> memoPut(u32()); // LONG_BINPUT
                case 0x94 -> memoPut(memo.size()); // MEMOIZE
                case 'h' -> memoGet(u8()); // BINGET
                case 'j' -> memoGet(u32()); // LONG_BINGET
                case 'c' -> { // GLOBAL: "module\nname\n"
                    String module = line();
                    String name = line();
                    push(resolve(module, name, "GLOBAL"));
                }
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop();
                    Object module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw bad("STACK_GLOBAL needs two strings, got " + typeName(module) + " and "
                                + typeName(name));
                    }
                    push(resolve(m, n, "STACK_GLOBAL"));
                }
                case 'Q' -> push(storage(pop())); // BINPERSID
                case 'R' -> { // REDUCE: callable(*args)
                    Object args = pop();
                    Object callable = pop();
                    push(call(callable, args, "REDUCE"));
                }
                case 0x81 -> { // NEWOBJ: cls.__new__(cls, *args)
                    Object args = pop();
                    Object cls = pop();
                    if (!(cls instanceof Global g) || g.kind != Kind.ORDERED_DICT) {
                        throw bad("NEWOBJ on " + describe(cls) + "; only collections.OrderedDict may be created");
                    }
                    push(call(cls, args, "NEWOBJ"));
                }
                case 'b' -> build(pop(), peek()); // BUILD
                default -> throw bad("unsupported pickle opcode " + opcodeName(op) + " (0x"
                        + Integer.toHexString(op) + "); a PyTorch state dict does not need it");
            }
        }
    }

    private Global resolve(String module, String name, String opcode) {
        Global g = ALLOWED.get(module + "." + name);
        if (g == null) {
            throw bad("refused global '" + module + "." + name + "' named by " + opcode
                    + ": a weights file may only reference " + allowedNames()
                    + ". Nothing from the file was run. If you trust the file, load it in Python and save "
                    + "model.state_dict() with torch.save, or as safetensors");
        }
        return g;
    }

    private Object call(Object callable, Object args, String opcode) {
        if (!(callable instanceof Global g)) {
            throw bad(opcode + " on " + describe(callable) + ", which is not an allowed callable");
        }
        if (!(args instanceof Tuple(List<Object> a))) {
            throw bad(opcode + " on " + g.qualifiedName + " with " + typeName(args) + " arguments (expected a tuple)");
        }
        return switch (g.kind) {
            case ORDERED_DICT -> {
                if (!a.isEmpty()) {
                    throw bad(g.qualifiedName + " called with " + a.size()
                            + " arguments; PyTorch creates it empty and fills it with SETITEMS");
                }
                yield container(new LinkedHashMap<>());
            }
            case REBUILD_TENSOR_V2, REBUILD_TENSOR -> rebuildTensor(g, a);
            case REBUILD_PARAMETER -> {
                // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its data.
                if (a.size() != 3 || !(a.getFirst() instanceof TensorRef t)) {
                    throw bad(g.qualifiedName + " expects (tensor, requires_grad, hooks), got " + describeAll(a));
                }
                yield t;
            }
            case STORAGE, DTYPE -> throw bad(opcode + " on " + g.qualifiedName
                    + ", which is allowed as a value but not as a call");
        };
    }

    private TensorRef rebuildTensor(Global g, List<Object> a) {
        // v2: (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]);
        // v1: (storage, storage_offset, size, stride).
        boolean v1 = g.kind == Kind.REBUILD_TENSOR;
        if (a.size() < (v1 ? 4 : 6) || a.size() > (v1 ? 4 : 7)
                || !(a.get(0) instanceof StorageRef storage)
                || !(a.get(1) instanceof Long offset)
                || !(a.get(2) instanceof Tuple size)
                || !(a.get(3) instanceof Tuple stride)) {
            throw bad(g.qualifiedName + " expects (storage, offset, size tuple, stride tuple"
                    + (v1 ? "" : ", requires_grad, hooks") + "), got " + describeAll(a));
        }
        if (a.size() > 5 && !(a.get(5) instanceof Map<?, ?> hooks && hooks.isEmpty())) {
            throw bad(g.qualifiedName + " with backward hooks " + describe(a.get(5)) + "; a state dict has none");
        }
        return new TensorRef(storage, offset, longs(size, "size"), longs(stride, "stride"));
    }

    private long[] longs(Tuple t, String what) {
        long[] out = new long[t.items().size()];
        for (int i = 0; i < out.length; i++) {
            if (!(t.items().get(i) instanceof Long v)) {
                throw bad("tensor " + what + " holds " + typeName(t.items().get(i)) + ", expected integers");
            }
            out[i] = v;
        }
        return out;
    }

    /** A persistent id: ('storage', torch.XxxStorage, key, location, numel[, view_metadata]). */
    private StorageRef storage(Object pid) {
        if (!(pid instanceof Tuple(List<Object> a)) || a.size() < 5 || a.size() > 6 || !"storage".equals(a.get(0))
                || !(a.get(1) instanceof Global type) || type.kind != Kind.STORAGE
                || !(a.get(2) instanceof String key) || !(a.get(3) instanceof String)
                || !(a.get(4) instanceof Long numel) || numel < 0) {
            throw bad("persistent id " + describe(pid)
                    + " is not ('storage', torch.XxxStorage, key, location, numel)");
        }
        Object view = a.size() == 6 ? a.get(5) : null;
        if (view == null) {
            return new StorageRef(key, type.dtype, numel, 0, numel);
        }
        // Pre-0.4 legacy files: (view_key, offset, size) in elements of the root storage.
        if (!(view instanceof Tuple(List<Object> v)) || v.size() != 3 || !(v.get(1) instanceof Long viewOffset)
                || !(v.get(2) instanceof Long viewSize) || viewOffset < 0 || viewSize < 0
                || viewOffset > numel - viewSize) {
            throw bad("storage view " + describe(view) + " is not (key, offset, size) inside storage '" + key
                    + "' of " + numel + " elements");
        }
        return new StorageRef(key, type.dtype, numel, viewOffset, viewSize);
    }

    private void build(Object state, Object target) {
        // OrderedDict.__reduce__ hands its instance attributes (state_dict's _metadata) to BUILD.
        if (!(target instanceof Map<?, ?>) || !(state == null || state instanceof Map<?, ?>)) {
            throw bad("BUILD of " + describe(target) + " with state " + describe(state)
                    + "; only an OrderedDict's attributes may be set");
        }
    }

    private void putItems(List<Object> items) {
        if (items.size() % 2 != 0) {
            throw bad("SETITEMS with an odd number of objects (" + items.size() + ")");
        }
        if (!(peek() instanceof Map<?, ?> raw)) {
            throw bad("SETITEM(S) on " + describe(peek()) + ", expected a dict");
        }
        @SuppressWarnings("unchecked")
        Map<Object, Object> map = (Map<Object, Object>) raw;
        for (int i = 0; i < items.size(); i += 2) {
            Object key = items.get(i);
            // Plain keys only: hashing a list or tuple from the file would recurse into its contents.
            if (!(key == null || key instanceof String || key instanceof Long || key instanceof BigInteger
                    || key instanceof Double || key instanceof Boolean)) {
                throw bad("dict key of type " + typeName(key) + "; a state dict has string keys");
            }
            nest(map, items.get(i + 1));
            map.put(key, items.get(i + 1));
        }
    }

    private void appendItems(List<Object> items) {
        if (!(peek() instanceof ArrayList<?> raw)) {
            throw bad("APPEND(S) on " + describe(peek()) + ", expected a list");
        }
        @SuppressWarnings("unchecked")
        List<Object> list = (List<Object>) raw;
        for (Object item : items) {
            nest(list, item);
            list.add(item);
        }
    }

    /** Records that {@code child} now sits inside {@code parent}, refusing runaway nesting. */
    private void nest(Object parent, Object child) {
        int d = depth.getOrDefault(child, 0) + 1;
        if (d > MAX_NESTING) {
            throw bad("containers nested deeper than " + MAX_NESTING + " levels");
        }
        depth.merge(parent, d, Math::max);
    }

    private <T> T container(T c) {
        depth.put(c, 1);
        return c;
    }

    private Tuple tuple(List<Object> items) {
        Tuple t = new Tuple(Collections.unmodifiableList(new ArrayList<>(items)));
        int d = 1;
        for (Object item : items) {
            d = Math.max(d, depth.getOrDefault(item, 0) + 1);
        }
        if (d > MAX_NESTING) {
            throw bad("containers nested deeper than " + MAX_NESTING + " levels");
        }
        depth.put(t, d);
        return t;
    }

    private void memoPut(long index) {
        if (stack.isEmpty()) {
            throw bad("memo store with an empty stack");
        }
        if (memo.size() >= MAX_ENTRIES && !memo.containsKey(index)) {
            throw bad("more than " + MAX_ENTRIES + " memo entries");
        }
        memo.put(index, peek());
    }

    private void memoGet(long index) {
        if (!memo.containsKey(index)) {
            throw bad("memo entry " + index + " read before it was stored");
        }
        push(memo.get(index));
    }

    private void push(Object o) {
        if (stack.size() >= MAX_ENTRIES) {
            throw bad("more than " + MAX_ENTRIES + " objects on the stack");
        }
        stack.add(o);
    }

    private Object pop() {
        int floor = marks.isEmpty() ? 0 : marks.getLast();
        if (stack.size() <= floor) {
            throw bad("stack underflow");
        }
        return stack.removeLast();
    }

    private Object peek() {
        int floor = marks.isEmpty() ? 0 : marks.getLast();
        if (stack.size() <= floor) {
            throw bad("stack underflow");
        }
        return stack.getLast();
    }

    private List<Object> popN(int n) {
        List<Object> items = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            items.addFirst(pop());
        }
        return items;
    }

    private List<Object> popMark() {
        if (marks.isEmpty()) {
            throw bad("no MARK to pop to");
        }
        int from = marks.removeLast();
        List<Object> top = stack.subList(from, stack.size());
        List<Object> items = new ArrayList<>(top);
        top.clear();
        return items;
    }

    private int u8() {
        return in.get(ValueLayout.JAVA_BYTE, take(1)) & 0xff;
    }

    private long u32() {
        return in.get(I32_LE, take(4)) & 0xffffffffL;
    }

    private long i64() {
        return in.get(I64_LE, take(8));
    }

    /** Reserves {@code n} bytes at the cursor, refusing to run past the end. */
    private long take(long n) {
        if (n < 0 || n > in.byteSize() - pos) {
            throw new SquallException.BadFile(source + ": pickle truncated at byte " + pos + " (opcode at byte "
                    + opAt + " needs " + (n < 0 ? "a negative number of" : String.valueOf(n))
                    + " more bytes, " + (in.byteSize() - pos) + " left); the file is incomplete or damaged");
        }
        long at = pos;
        pos += n;
        return at;
    }

    private Object longN(long n) {
        if (n < 0 || n > 64) {
            throw bad("integer of " + n + " bytes; a state dict needs at most 64-bit integers and the magic number");
        }
        byte[] le = in.asSlice(take(n), n).toArray(ValueLayout.JAVA_BYTE);
        byte[] be = new byte[(int) n];
        for (int i = 0; i < n; i++) {
            be[i] = le[(int) n - 1 - i];
        }
        BigInteger v = n == 0 ? BigInteger.ZERO : new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private String utf8(long n) {
        long at = take(n);
        if (n > Integer.MAX_VALUE - 8) {
            throw bad("string of " + n + " bytes");
        }
        ByteBuffer bytes = in.asSlice(at, n).asByteBuffer();
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes).toString();
        } catch (CharacterCodingException e) {
            throw bad("string that is not valid UTF-8");
        }
    }

    /** A GLOBAL operand: text up to a newline, bounded so a missing newline cannot run on. */
    private String line() {
        StringBuilder sb = new StringBuilder();
        while (true) {
            int b = u8();
            if (b == '\n') {
                return sb.toString();
            }
            if (sb.length() >= MAX_GLOBAL_NAME || b < 0x20 || b > 0x7e) {
                throw bad("GLOBAL name is not a short printable line");
            }
            sb.append((char) b);
        }
    }

    private SquallException.BadFile bad(String what) {
        return new SquallException.BadFile(source + ": " + what + " (pickle opcode at byte " + opAt + ")");
    }

    /** A short description of a value for messages; never recurses into file data. */
    private static String describe(Object o) {
        return switch (o) {
            case null -> "None";
            case Global g -> g.qualifiedName;
            case String s -> "'" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "'";
            case Long l -> l.toString();
            case Tuple t -> "a tuple of " + t.items().size();
            case Map<?, ?> m -> "a dict of " + m.size();
            case List<?> l -> "a list of " + l.size();
            default -> typeName(o);
        };
    }

    private static String describeAll(List<Object> items) {
        return items.stream().map(RestrictedUnpickler::describe).collect(Collectors.joining(", ", "(", ")"));
    }

    private static String typeName(Object o) {
        return switch (o) {
            case null -> "None";
            case String s -> "str";
            case Long l -> "int";
            case BigInteger b -> "int";
            case Double d -> "float";
            case Boolean b -> "bool";
            case Tuple t -> "tuple";
            case Map<?, ?> m -> "dict";
            case List<?> l -> "list";
            case Global g -> g.qualifiedName;
            case StorageRef s -> "storage";
            case TensorRef t -> "tensor";
            default -> o.getClass().getSimpleName();
        };
    }

    private static String opcodeName(int op) {
        return switch (op) {
            case 'F' -> "FLOAT";
            case 'I' -> "INT";
            case 'L' -> "LONG";
            case '2' -> "DUP";
            case 'P' -> "PERSID";
            case 'S' -> "STRING";
            case 'T' -> "BINSTRING";
            case 'U' -> "SHORT_BINSTRING";
            case 'V' -> "UNICODE";
            case 'd' -> "DICT";
            case 'g' -> "GET";
            case 'i' -> "INST";
            case 'l' -> "LIST";
            case 'o' -> "OBJ";
            case 'p' -> "PUT";
            case 'B' -> "BINBYTES";
            case 'C' -> "SHORT_BINBYTES";
            case 0x82 -> "EXT1";
            case 0x83 -> "EXT2";
            case 0x84 -> "EXT4";
            case 0x8e -> "BINBYTES8";
            case 0x8f -> "EMPTY_SET";
            case 0x90 -> "ADDITEMS";
            case 0x91 -> "FROZENSET";
            case 0x92 -> "NEWOBJ_EX";
            case 0x96 -> "BYTEARRAY8";
            case 0x97 -> "NEXT_BUFFER";
            case 0x98 -> "READONLY_BUFFER";
            default -> "<unknown>";
        };
    }
}
