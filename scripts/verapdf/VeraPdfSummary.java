// Summarises a veraPDF machine-readable report (CLI `--format xml`, one job).
// Used by scripts/verapdf.sh; compiled with javac into the cache, JDK only.
//
// Usage: java -cp DIR VeraPdfSummary REPORT.xml
// Exit:  0 compliant, 1 not compliant (or the PDF could not be parsed),
//        2 the report is missing, unreadable or has no validation result.
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public final class VeraPdfSummary {
    private VeraPdfSummary() {}

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: VeraPdfSummary REPORT.xml");
            System.exit(2);
        }
        Document doc;
        try {
            DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
            f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            f.setExpandEntityReferences(false);
            javax.xml.parsers.DocumentBuilder db = f.newDocumentBuilder();
            db.setErrorHandler(new org.xml.sax.helpers.DefaultHandler()); // no "[Fatal Error]" noise
            doc = db.parse(new File(args[0]));
        } catch (Exception e) {
            System.err.println("verapdf: cannot read the veraPDF report: " + e);
            System.exit(2);
            return;
        }

        String version = "";
        NodeList rel = doc.getElementsByTagName("releaseDetails");
        for (int i = 0; i < rel.getLength(); i++) {
            Element r = (Element) rel.item(i);
            if ("apps".equals(r.getAttribute("id"))) {
                version = r.getAttribute("version");
            }
        }
        String name = text(doc.getDocumentElement(), "name");

        NodeList reports = doc.getElementsByTagName("validationReport");
        if (reports.getLength() == 0) {
            NodeList exc = doc.getElementsByTagName("taskException");
            if (exc.getLength() > 0) {
                Element e = (Element) exc.item(0);
                System.out.println("veraPDF " + version + ": " + name);
                System.out.println("compliant: no (" + e.getAttribute("type").toLowerCase()
                        + " failed: " + text(e, "exceptionMessage") + ")");
                System.exit(1);
            }
            System.err.println("verapdf: the report has no validation result");
            System.exit(2);
        }

        Element report = (Element) reports.item(0);
        boolean compliant = "true".equals(report.getAttribute("isCompliant"));
        Element details = first(report, "details");
        System.out.println("veraPDF " + version + ", " + report.getAttribute("profileName") + ": " + name);
        if (details == null) {
            System.out.println("compliant: " + (compliant ? "yes" : "no"));
            System.exit(compliant ? 0 : 1);
        }
        System.out.println("compliant: " + (compliant ? "yes" : "no") + " (rules passed "
                + details.getAttribute("passedRules") + ", failed " + details.getAttribute("failedRules")
                + "; checks failed " + details.getAttribute("failedChecks") + ")");
        NodeList ruleNodes = details.getElementsByTagName("rule");
        List<Element> rules = new ArrayList<>();
        for (int i = 0; i < ruleNodes.getLength(); i++) {
            Element rule = (Element) ruleNodes.item(i);
            if ("failed".equals(rule.getAttribute("status"))) {
                rules.add(rule);
            }
        }
        // veraPDF's rule order depends on the JVM; sort by clause, then test number.
        rules.sort((a, b) -> compareIds(ruleId(a), ruleId(b)));
        for (Element rule : rules) {
            System.out.println("FAIL " + ruleId(rule)
                    + " [" + rule.getAttribute("failedChecks") + " check(s)]: "
                    + oneLine(text(rule, "description")));
            String msg = text(rule, "errorMessage");
            if (!msg.isEmpty()) {
                System.out.println("    e.g. " + oneLine(msg));
            }
        }
        System.exit(compliant ? 0 : 1);
    }

    private static String ruleId(Element rule) {
        return rule.getAttribute("clause") + "-" + rule.getAttribute("testNumber");
    }

    /** Compares ids like 6.2.4.3-2 part by part, numerically where both parts are numbers. */
    private static int compareIds(String a, String b) {
        String[] pa = a.split("[.-]");
        String[] pb = b.split("[.-]");
        for (int i = 0; i < Math.min(pa.length, pb.length); i++) {
            int c;
            try {
                c = Long.compare(Long.parseLong(pa[i]), Long.parseLong(pb[i]));
            } catch (NumberFormatException e) {
                c = pa[i].compareTo(pb[i]);
            }
            if (c != 0) {
                return c;
            }
        }
        return Integer.compare(pa.length, pb.length);
    }

    private static Element first(Element parent, String tag) {
        NodeList l = parent.getElementsByTagName(tag);
        return l.getLength() == 0 ? null : (Element) l.item(0);
    }

    private static String text(Element parent, String tag) {
        Element e = first(parent, tag);
        return e == null ? "" : e.getTextContent().trim();
    }

    private static String oneLine(String s) {
        return s.replaceAll("\\s+", " ").trim();
    }
}
