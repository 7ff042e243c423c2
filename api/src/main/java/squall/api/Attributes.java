package squall.api;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A node's attributes: ints, floats, int arrays, float arrays and strings, by name. Immutable.
 * Getters that take no default throw an error naming the attribute when it is missing or of the
 * wrong kind.
 */
public final class Attributes {
    public static final Attributes EMPTY = new Attributes(Map.of());

    private final Map<String, Object> values;

    private Attributes(Map<String, Object> values) {
        this.values = values;
    }

    /** {@code Attributes.of("stride", 2, "padding", new int[]{1, 1})}: name, value pairs. */
    public static Attributes of(Object... namesAndValues) {
        if (namesAndValues.length % 2 != 0) {
            throw new IllegalArgumentException("attributes need name, value pairs");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            m.put((String) namesAndValues[i], normalize((String) namesAndValues[i], namesAndValues[i + 1]));
        }
        return new Attributes(Collections.unmodifiableMap(m));
    }

    public Attributes with(String name, Object value) {
        Map<String, Object> m = new LinkedHashMap<>(values);
        m.put(name, normalize(name, value));
        return new Attributes(Collections.unmodifiableMap(m));
    }

    private static Object normalize(String name, Object v) {
        return switch (v) {
            case Integer i -> i;
            case Long l -> Math.toIntExact(l);
            case Float f -> f;
            case Double d -> d.floatValue();
            case Boolean b -> b ? 1 : 0;
            case int[] a -> a.clone();
            case long[] a -> Arrays.stream(a).mapToInt(Math::toIntExact).toArray();
            case float[] a -> a.clone();
            case String s -> s;
            case null, default -> throw new IllegalArgumentException("attribute '" + name
                    + "' has unsupported value " + v + "; use int, float, int[], float[] or String");
        };
    }

    public boolean has(String name) {
        return values.containsKey(name);
    }

    public Map<String, Object> asMap() {
        return values;
    }

    public int getInt(String name, int fallback) {
        return has(name) ? getInt(name) : fallback;
    }

    public int getInt(String name) {
        Object v = require(name);
        if (v instanceof Integer i) {
            return i;
        }
        throw wrongKind(name, "an int", v);
    }

    public float getFloat(String name, float fallback) {
        return has(name) ? getFloat(name) : fallback;
    }

    public float getFloat(String name) {
        Object v = require(name);
        if (v instanceof Float f) {
            return f;
        }
        if (v instanceof Integer i) {
            return i;
        }
        throw wrongKind(name, "a float", v);
    }

    /** An int array; a single int is accepted and repeated {@code length} times. */
    public int[] getInts(String name, int length, int fallback) {
        if (!has(name)) {
            int[] a = new int[length];
            Arrays.fill(a, fallback);
            return a;
        }
        Object v = values.get(name);
        if (v instanceof Integer i) {
            int[] a = new int[length];
            Arrays.fill(a, i);
            return a;
        }
        if (v instanceof int[] a) {
            if (a.length != length) {
                throw new SquallException.BadShape("attribute '" + name + "' has " + a.length
                        + " values " + Arrays.toString(a) + ", expected " + length);
            }
            return a.clone();
        }
        throw wrongKind(name, "an int or int[]", v);
    }

    public int[] getInts(String name) {
        Object v = require(name);
        if (v instanceof int[] a) {
            return a.clone();
        }
        if (v instanceof Integer i) {
            return new int[] {i};
        }
        throw wrongKind(name, "an int[]", v);
    }

    public float[] getFloats(String name) {
        Object v = require(name);
        if (v instanceof float[] a) {
            return a.clone();
        }
        throw wrongKind(name, "a float[]", v);
    }

    public String getString(String name, String fallback) {
        return has(name) ? getString(name) : fallback;
    }

    public String getString(String name) {
        Object v = require(name);
        if (v instanceof String s) {
            return s;
        }
        throw wrongKind(name, "a string", v);
    }

    private Object require(String name) {
        Object v = values.get(name);
        if (v == null) {
            throw new SquallException.BadShape("missing attribute '" + name + "' (have " + values.keySet() + ")");
        }
        return v;
    }

    private static SquallException wrongKind(String name, String expected, Object v) {
        return new SquallException.BadShape("attribute '" + name + "' should be " + expected + ", got " + show(v));
    }

    private static String show(Object v) {
        return switch (v) {
            case int[] a -> Arrays.toString(a);
            case float[] a -> Arrays.toString(a);
            case String s -> '"' + s + '"';
            default -> String.valueOf(v);
        };
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Attributes other) || !other.values.keySet().equals(values.keySet())) {
            return false;
        }
        for (var e : values.entrySet()) {
            if (!Arrays.deepEquals(new Object[] {e.getValue()}, new Object[] {other.values.get(e.getKey())})) {
                return false;
            }
        }
        return true;
    }

    @Override
    public int hashCode() {
        return values.keySet().hashCode();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("{");
        values.forEach((k, v) -> sb.append(sb.length() > 1 ? ", " : "").append(k).append('=').append(show(v)));
        return sb.append('}').toString();
    }
}
