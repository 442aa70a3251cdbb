package dev.isthmus.gateway;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.core.importer.Location;
import com.tngtech.archunit.library.dependencies.SliceAssignment;
import com.tngtech.archunit.library.dependencies.SliceIdentifier;
import com.tngtech.archunit.library.dependencies.SliceRule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.JarFile;

import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The architecture as rules over the compiled production classes of every module (this module's tests see all
 * of them): which module may use which, and that the packages inside a module form no cycle.
 *
 * <p>Maven's module graph already stops a lower module from compiling against a higher one; these rules say the
 * same at the package level, so it stays true if modules are merged or split, and they add what Maven cannot
 * see: the layering of packages inside a module. A failure names the offending class and dependency.
 *
 * <p>Only production classes are checked: test classes may reach anything their module's tests can.
 */
class ArchitectureTest {
    /**
     * The module graph of the poms (each module depends on the one before it, and through it on all below),
     * lowest first, with each module's package root. {@code bench} depends on everything and is not on this
     * module's class path; nothing depends on it (Maven enforces that).
     */
    static final String[][] MODULES = {
        {"ffi-bindings", "dev.isthmus.ffi.."},
        {"uring-io", "dev.isthmus.uring.."},
        {"memory-arena", "dev.isthmus.arena.."},
        {"log-engine", "dev.isthmus.log.."},
        {"raft", "dev.isthmus.raft.."},
        {"kafka-gateway", "dev.isthmus.gateway.."},
    };
    /** One class of each module, in {@link #MODULES}' order: where it was loaded from is the module's classes. */
    static final Class<?>[] MODULE_CLASSES = {
        dev.isthmus.ffi.Errno.class, dev.isthmus.uring.Ring.class, dev.isthmus.arena.MemoryArena.class,
        dev.isthmus.log.Log.class, dev.isthmus.raft.RaftGroup.class, Broker.class,
    };

    /**
     * Package dependencies that close a cycle today, each as {from package, to package} with the reason; the
     * cycle rule ignores exactly these. None today: add one only with a comment saying why and what removes it,
     * and remove it when the cycle is broken.
     */
    static final List<String[]> KNOWN_CYCLE_EDGES = List.of();

    static JavaClasses classes;

    /**
     * Imports the classes of the six modules only: the directory or jar each was loaded from (target/classes or
     * the module's jar, as Maven's reactor hands it). Scanning the whole class path (Kafka, Scala, Connect) and
     * resolving every referenced class from it took over a minute on a loaded machine; archunit.properties turns
     * the latter off, so classes outside the modules are stubs named by their dependencies, which is all these
     * rules look at.
     */
    @BeforeAll
    static void importProductionClasses() throws Exception {
        List<Location> roots = new ArrayList<>();
        List<JarFile> jars = new ArrayList<>();
        try {
            for (Class<?> c : MODULE_CLASSES) {
                Path p = Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
                if (Files.isDirectory(p)) {
                    roots.add(Location.of(p));
                } else {
                    JarFile jar = new JarFile(p.toFile());
                    jars.add(jar);
                    roots.add(Location.of(jar));
                }
            }
            classes = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importLocations(roots);
        } finally {
            for (JarFile j : jars) {
                j.close();
            }
        }
        // Guard against an empty or partial import (a class path change would make every rule pass vacuously).
        for (String[] m : MODULES) {
            String root = m[1].substring(0, m[1].length() - 2);
            assertTrue(classes.stream().anyMatch(c -> c.getPackageName().startsWith(root)),
                "no production class of " + m[0] + " (" + root + ") was imported");
        }
        assertTrue(classes.stream().noneMatch(c -> c.getSimpleName().endsWith("Test")),
            "test classes were imported: the import options no longer tell them apart");
        assertTrue(classes.get(Broker.class).getDirectDependenciesFromSelf().stream()
                .anyMatch(d -> d.getTargetClass().getPackageName().equals("dev.isthmus.raft.server")),
            "the import does not see Broker's use of dev.isthmus.raft.server: the rules would pass vacuously");
    }

    @Test
    void shouldLetAModuleUseOnlyTheModulesBelowIt() {
        var layers = layeredArchitecture().consideringOnlyDependenciesInLayers();
        for (String[] m : MODULES) {
            layers = layers.layer(m[0]).definedBy(m[1]);
        }
        var rule = layers.whereLayer(MODULES[MODULES.length - 1][0]).mayNotBeAccessedByAnyLayer();
        for (int i = 0; i < MODULES.length - 1; i++) {
            String[] above = new String[MODULES.length - 1 - i];
            for (int j = i + 1; j < MODULES.length; j++) {
                above[j - i - 1] = MODULES[j][0];
            }
            rule = rule.whereLayer(MODULES[i][0]).mayOnlyBeAccessedByLayers(above);
        }
        rule.ensureAllClassesAreContainedInArchitecture()
            .because("dependencies point one way: ffi-bindings -> uring-io -> memory-arena -> log-engine -> raft"
                + " -> kafka-gateway (docs/ARCHITECTURE.md)")
            .check(classes);
    }

    @Test
    void shouldKeepRaftFreeOfTheKafkaLayer() {
        noClasses().that().resideInAPackage("dev.isthmus.raft..")
            .should().dependOnClassesThat().resideInAPackage("dev.isthmus.gateway..")
            .because("Raft is consensus only: cluster metadata (topics, placement, the controller) is the Kafka"
                + " layer's (dev.isthmus.gateway.cluster), which hosts its group through Raft's generic API")
            .check(classes);
    }

    @Test
    void shouldKeepTheRaftCoreAPureStateMachine() {
        noClasses().that().resideInAPackage("dev.isthmus.raft")
            .should().dependOnClassesThat().resideInAnyPackage("dev.isthmus.raft.*..", "dev.isthmus.log..",
                "dev.isthmus.arena..")
            .because("RaftGroup and its messages are stepped by tick() and onMessage() with no I/O, so the"
                + " simulator can run a cluster from a seed; transport, storage and hosting sit in subpackages"
                + " above it")
            .check(classes);
    }

    @Test
    void shouldHaveNoCycleBetweenPackages() {
        SliceRule rule = slices().assignedFrom(EACH_PACKAGE).should().beFreeOfCycles();
        for (String[] e : KNOWN_CYCLE_EDGES) {
            rule = rule.ignoreDependency(inPackage(e[0]), inPackage(e[1]));
        }
        rule.because("a package is a layer of its module: the gateway's root package (wiring and handlers)"
                + " uses its subpackages, never the reverse, and likewise inside every module")
            .check(classes);
    }

    /** Every package of the project is its own slice, subpackages included (protocol and protocol.message). */
    static final SliceAssignment EACH_PACKAGE = new SliceAssignment() {
        @Override
        public SliceIdentifier getIdentifierOf(JavaClass c) {
            return c.getPackageName().startsWith("dev.isthmus.") ? SliceIdentifier.of(c.getPackageName())
                : SliceIdentifier.ignore();
        }

        @Override
        public String getDescription() {
            return "each package of dev.isthmus";
        }
    };

    static DescribedPredicate<JavaClass> inPackage(String pkg) {
        return resideInAPackage(pkg);
    }
}
