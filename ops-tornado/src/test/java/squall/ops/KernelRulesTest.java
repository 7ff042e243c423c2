package squall.ops;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Portable kernels keep to what TornadoVM can compile: final classes of public static void
 * methods over primitive arrays and scalars. (That a kernel handed out as a KernelCall has at
 * most 15 parameters, TornadoFunctions.Task15, is checked by {@link OpHarness} on every call.)
 */
class KernelRulesTest {
    @Test
    void kernelClassesFollowTornadoVmRules() {
        for (Class<?> kernels : List.of(ConvKernels.class, PoolKernels.class, PointwiseKernels.class,
                DenseKernels.class)) {
            assertTrue(Modifier.isFinal(kernels.getModifiers()), kernels + " is final");
            for (Method m : kernels.getDeclaredMethods()) {
                if (!Modifier.isPublic(m.getModifiers()) || m.isSynthetic()) {
                    continue;
                }
                assertTrue(Modifier.isStatic(m.getModifiers()), m + " is static");
                for (Class<?> p : m.getParameterTypes()) {
                    assertTrue(p.isPrimitive() || (p.isArray() && p.getComponentType().isPrimitive()),
                            m.getName() + " takes only primitives and primitive arrays, not " + p);
                }
            }
        }
    }
}
