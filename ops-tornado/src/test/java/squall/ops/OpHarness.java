package squall.ops;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import squall.api.Attributes;
import squall.api.CpuKernel;
import squall.api.KernelCall;
import squall.api.Node;
import squall.api.Operator;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Workers;
import squall.backend.jvm.JvmKernelContext;

/**
 * Runs one built-in operator on arrays: its portable kernels as plain Java (the reference
 * semantics), and its CPU kernel with one and with two workers, which must agree within
 * {@link #assertCpuAgrees}'s tolerance (the Vector API kernels sum in another order).
 */
final class OpHarness {
    static final Operators BUILTIN = Operators.of(List.of(new BuiltinOperators()));

    private OpHarness() {
    }

    /** A node reading inputs named in0, in1, ... ("" where {@code shapes} has null) and writing "y". */
    static Node node(String op, Attributes attributes, List<Shape> shapes) {
        List<String> inputs = new ArrayList<>();
        for (int i = 0; i < shapes.size(); i++) {
            inputs.add(shapes.get(i) == null ? "" : "in" + i);
        }
        return new Node("test_" + op, op, inputs, List.of("y"), attributes);
    }

    /** The output of the portable kernels, after checking the CPU kernel (if any) agrees with it. */
    static float[] run(String op, Attributes attributes, List<Shape> shapes, float[]... inputs) {
        Operator operator = BUILTIN.get(op);
        Node node = node(op, attributes, shapes);
        List<Shape> outShapes = operator.outputShapes(node, shapes);
        var portable = JvmKernelContext.withNewOutputs(node, shapes, outShapes, inputs);
        List<KernelCall> calls = operator.kernels(portable);
        assertNotNull(calls);
        for (KernelCall call : calls) {
            assertTrue(call.kernel().getParameterCount() <= 15, call.name() + " has "
                    + call.kernel().getParameterCount() + " parameters; a TornadoVM task takes at most 15");
        }
        calls.forEach(KernelCall::invoke);
        float[] expected = portable.output(0);
        for (int threads : new int[] {1, 2}) {
            var tuned = JvmKernelContext.withNewOutputs(node, shapes, outShapes, inputs);
            CpuKernel cpu = operator.cpuKernel(tuned);
            if (cpu != null) {
                cpu.run(Workers.of(threads));
                assertCpuAgrees(expected, tuned.output(0), op + ": CPU kernel with " + threads + " threads");
            }
        }
        return expected;
    }

    /**
     * A CPU kernel against the portable one: |cpu - portable| <= 1e-5 · (|portable| + mean |portable|),
     * relative to the element and, for results near zero after cancellation, to the output's typical
     * magnitude. Both are float; only the order of summation (and fused multiply-adds) differs.
     */
    static void assertCpuAgrees(float[] portable, float[] cpu, String what) {
        double meanAbs = 0;
        for (float v : portable) {
            meanAbs += Math.abs(v) / portable.length;
        }
        for (int i = 0; i < portable.length; i++) {
            double tolerance = 1e-5 * (Math.abs(portable[i]) + meanAbs);
            if (!(Math.abs(cpu[i] - portable[i]) <= tolerance) && Float.compare(cpu[i], portable[i]) != 0) {
                fail(what + ": element " + i + " of " + portable.length + " is " + cpu[i] + ", the portable kernel gives "
                        + portable[i] + " (tolerance " + tolerance + ")");
            }
        }
    }

    static Shape outputShape(String op, Attributes attributes, List<Shape> shapes) {
        return BUILTIN.get(op).outputShapes(node(op, attributes, shapes), shapes).getFirst();
    }

    static float[] random(Random random, int size, float range) {
        float[] a = new float[size];
        for (int i = 0; i < size; i++) {
            a[i] = (random.nextFloat() * 2 - 1) * range;
        }
        return a;
    }

    /** Float results against a double-precision reference: |got - ref| <= 1e-5·scale + 1e-5·|ref|. */
    static void assertClose(double[] reference, float[] actual, double scale, String what) {
        if (reference.length != actual.length) {
            fail(what + ": " + actual.length + " values, reference has " + reference.length);
        }
        for (int i = 0; i < reference.length; i++) {
            double tolerance = 1e-5 * scale + 1e-5 * Math.abs(reference[i]);
            if (!(Math.abs(actual[i] - reference[i]) <= tolerance)
                    && !(Double.isInfinite(reference[i]) && reference[i] == actual[i])) {
                fail(what + ": element " + i + " is " + actual[i] + ", reference " + reference[i] + " (first of "
                        + reference.length + ")" + (reference.length < 40 ? "\n got " + Arrays.toString(actual)
                        + "\n ref " + Arrays.toString(reference) : ""));
            }
        }
    }

    /** The reference's activations, in double precision, from their papers' formulas. */
    static double activation(String name, double x) {
        return switch (name) {
            case "none" -> x;
            case "relu" -> Math.max(0, x);
            case "relu6" -> Math.min(6, Math.max(0, x));
            case "sigmoid" -> 1 / (1 + Math.exp(-x));
            case "silu" -> x / (1 + Math.exp(-x));
            case "hardsigmoid" -> Math.max(0, Math.min(1, x / 6 + 0.5));
            case "hardswish" -> x * Math.min(6, Math.max(0, x + 3)) / 6;
            default -> throw new IllegalArgumentException(name);
        };
    }
}
