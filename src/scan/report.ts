/**
 * Scan reports, as the CI gate reads them. The parser lives in attest/scan-report.ts because nodes read
 * the same reports inside vulnerability attestations (trivy --format cosign-vuln), and the node's engine
 * must not import the CI gate (src/scan/).
 */
export * from '../attest/scan-report.js';
