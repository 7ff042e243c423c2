package squall.api;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;

/**
 * One invocation of a portable kernel: a {@code public static void} method whose parameters are
 * primitive arrays and scalars, and the arguments to pass. The JVM backend invokes it; the
 * TornadoVM backend turns it into a task. Arrays passed here are the backend's buffers.
 */
public record KernelCall(Method kernel, Object[] args) {
    public KernelCall {
        if (!Modifier.isStatic(kernel.getModifiers()) || kernel.getReturnType() != void.class) {
            throw new IllegalArgumentException("kernel " + kernel + " must be a static void method");
        }
        if (kernel.getParameterCount() != args.length) {
            throw new IllegalArgumentException("kernel " + kernel.getName() + " takes " + kernel.getParameterCount()
                    + " arguments, got " + args.length);
        }
    }

    /** The unique public static method named {@code methodName} of {@code owner}, with these arguments. */
    public static KernelCall of(Class<?> owner, String methodName, Object... args) {
        Method found = null;
        for (Method m : owner.getMethods()) {
            if (m.getName().equals(methodName) && Modifier.isStatic(m.getModifiers())) {
                if (found != null) {
                    throw new IllegalArgumentException("kernel name " + owner.getName() + "." + methodName
                            + " is overloaded; kernels need unique names");
                }
                found = m;
            }
        }
        if (found == null) {
            throw new IllegalArgumentException("no public static kernel " + owner.getName() + "." + methodName);
        }
        return new KernelCall(found, args);
    }

    /** Runs the kernel as plain Java (sequentially, the reference semantics). */
    public void invoke() {
        try {
            kernel.invoke(null, args);
        } catch (IllegalAccessException e) {
            throw new SquallException("cannot call kernel " + name() + ": " + e.getMessage(), e);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new SquallException("kernel " + name() + " failed: " + cause, cause);
        }
    }

    public String name() {
        return kernel.getDeclaringClass().getSimpleName() + "." + kernel.getName();
    }

    @Override
    public String toString() {
        return name() + Arrays.stream(args).map(a -> a instanceof float[] f ? "float[" + f.length + "]"
                : a instanceof int[] i ? "int[" + i.length + "]" : String.valueOf(a)).toList();
    }
}
