package squall.api;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a loop whose iterations are independent: {@code for (@Parallel int i = 0; i < n; i++)}.
 *
 * <p>It is Squall's own so that kernels compile without TornadoVM on the classpath; the TornadoVM
 * backend names it in {@code tornado.load.annotation.parallel} before the first kernel is compiled,
 * and TornadoVM then maps one to three consecutive parallel loops onto its launch grid. On the JVM
 * the annotation has no effect and the loop runs sequentially.
 */
@Target({ElementType.TYPE_USE, ElementType.LOCAL_VARIABLE})
@Retention(RetentionPolicy.RUNTIME)
public @interface Parallel {
}
