"""A stand-in for Apple's App Store signing: a local root → intermediate → leaf chain carrying the OIDs Apple's
verifier checks, and App Store Server Notifications V2 signed with the leaf key, in Apple's JWS format."""

from __future__ import annotations

import base64
import datetime
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Apple's verifier requires these extensions on the leaf and the intermediate.
LEAF_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
INTERMEDIATE_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    marker: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if marker is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(marker, b"\x05\x00"), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class AppleSigner:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    bundle_id: str
    environment: str = "Sandbox"

    @classmethod
    def create(cls, bundle_id: str) -> AppleSigner:
        root_key, intermediate_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        root = _certificate("Test Apple Root CA", root_key, None, root_key, ca=True, marker=None)
        intermediate = _certificate(
            "Test Apple WWDR CA", intermediate_key, root, root_key, ca=True, marker=INTERMEDIATE_OID
        )
        leaf = _certificate(
            "Test App Store Signing", leaf_key, intermediate, intermediate_key, ca=False, marker=LEAF_OID
        )
        return cls(root, intermediate, leaf, leaf_key, bundle_id)

    def write_root(self, folder: Path) -> Path:
        path = folder / "apple-root.cer"
        path.write_bytes(self.root.public_bytes(serialization.Encoding.DER))
        return path

    def sign(self, claims: dict[str, Any]) -> str:
        chain = [
            base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
            for certificate in (self.leaf, self.intermediate, self.root)
        ]
        return jwt.encode(claims, self.leaf_key, algorithm="ES256", headers={"x5c": chain})

    def transaction(
        self,
        *,
        original_transaction_id: str,
        transaction_id: str,
        product_id: str,
        app_account_token: str | None,
        purchased: datetime.datetime,
        expires: datetime.datetime,
        price: int = 14990,
    ) -> str:
        claims = {
            "transactionId": transaction_id,
            "originalTransactionId": original_transaction_id,
            "bundleId": self.bundle_id,
            "productId": product_id,
            "purchaseDate": int(purchased.timestamp() * 1000),
            "originalPurchaseDate": int(purchased.timestamp() * 1000),
            "expiresDate": int(expires.timestamp() * 1000),
            "quantity": 1,
            "type": "Auto-Renewable Subscription",
            "inAppOwnershipType": "PURCHASED",
            "signedDate": int(time.time() * 1000),
            "environment": self.environment,
            "transactionReason": "PURCHASE",
            "storefront": "USA",
            "storefrontId": "143441",
            "price": price,
            "currency": "USD",
        }
        if app_account_token:
            claims["appAccountToken"] = app_account_token
        return self.sign(claims)

    def renewal(self, *, original_transaction_id: str, product_id: str, auto_renew: bool) -> str:
        return self.sign(
            {
                "originalTransactionId": original_transaction_id,
                "autoRenewProductId": product_id,
                "productId": product_id,
                "autoRenewStatus": 1 if auto_renew else 0,
                "signedDate": int(time.time() * 1000),
                "environment": self.environment,
            }
        )

    def notification(
        self,
        notification_type: str,
        *,
        transaction: str,
        renewal: str | None = None,
        subtype: str | None = None,
        notification_uuid: str | None = None,
        bundle_id: str | None = None,
    ) -> str:
        data: dict[str, Any] = {
            "bundleId": bundle_id or self.bundle_id,
            "environment": self.environment,
            "signedTransactionInfo": transaction,
            "status": 1,
        }
        if renewal:
            data["signedRenewalInfo"] = renewal
        claims: dict[str, Any] = {
            "notificationType": notification_type,
            "notificationUUID": notification_uuid or str(uuid.uuid4()),
            "version": "2.0",
            "signedDate": int(time.time() * 1000),
            "data": data,
        }
        if subtype:
            claims["subtype"] = subtype
        return self.sign(claims)
