package dev.isthmus.log;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The module README's example, exactly as written there: extracted, compiled and run. */
class ReadmeExampleTest {
    @TempDir
    Path dir;

    @Test
    void shouldCompileAndRunTheReadmeExample() throws Exception {
        String readme = Files.readString(Path.of("README.md"), StandardCharsets.UTF_8);
        int start = readme.indexOf("<!-- example:start -->");
        int end = readme.indexOf("<!-- example:end -->");
        assertTrue(start >= 0 && end > start, "the README marks its example");
        String block = readme.substring(start, end);
        String code = block.substring(block.indexOf("```java") + "```java".length(), block.lastIndexOf("```"));
        Path source = dir.resolve("LogExample.java");
        Files.writeString(source, code);

        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "a JDK compiler");
        ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
        int rc = javac.run(null, diagnostics, diagnostics, "-cp", System.getProperty("java.class.path"), "-d",
            dir.toString(), source.toString());
        assertEquals(0, rc, "the example compiles:\n" + diagnostics.toString(StandardCharsets.UTF_8));

        PrintStream out = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
            Method main = loader.loadClass("LogExample").getMethod("main", String[].class);
            System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
            main.invoke(null, (Object) new String[0]);
        } finally {
            System.setOut(out);
        }
        String output = printed.toString(StandardCharsets.UTF_8);
        out.print(output);
        String expected = readme.substring(end).lines().filter(l -> l.startsWith("It prints `")).findFirst()
            .map(l -> l.substring("It prints `".length(), l.indexOf('`', "It prints `".length()))).orElseThrow();
        assertEquals(expected, output.strip(), "what the README says it prints");
    }
}
