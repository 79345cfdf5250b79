"""``/v1/tenants/{name}/wallet``: a tenant's credits, transactions and member budgets.

Everyone with a role in the tenant reads the wallet; platform admins top it up, adjust it and
set its policy (credit limit, what happens when it runs out, whether admission needs cover);
tenant admins set their members' budgets (sub-wallets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.convert import member_budget_out, transaction_out, wallet_out
from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    AdminDep,
    PrincipalDep,
    SessionDep,
    require_tenant_role,
)
from api.params import CursorQuery, TenantPath, UserPath
from api.schemas import (
    MemberBudgetIn,
    MemberBudgetOut,
    WalletCredit,
    WalletOut,
    WalletPolicy,
    WalletTransactionOut,
    WalletTransactionPageOut,
)
from store import audit, tenants, wallets

router = APIRouter(prefix="/v1/tenants/{name}/wallet", tags=["accounting"])


@router.get("")
def get_wallet(name: TenantPath, session: SessionDep, principal: PrincipalDep) -> WalletOut:
    require_tenant_role(principal, name, READ_ROLES)
    return wallet_out(wallets.view(session, name))


@router.patch("")
def set_wallet_policy(
    name: TenantPath, body: WalletPolicy, session: SessionDep, admin: AdminDep
) -> WalletOut:
    wallets.set_policy(
        session,
        name,
        credit_limit=body.credit_limit,
        on_exhausted=body.on_exhausted,
        require_cover=body.require_cover,
    )
    audit.record(session, admin.user, "wallet.policy", name, **body.model_dump(exclude_unset=True))
    return wallet_out(wallets.view(session, name))


@router.get("/transactions")
def list_transactions(
    name: TenantPath,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: CursorQuery = None,
) -> WalletTransactionPageOut:
    require_tenant_role(principal, name, READ_ROLES)
    page = wallets.transactions(session, name, limit=limit, cursor=cursor)
    return WalletTransactionPageOut(
        items=[transaction_out(row) for row in page.items], next_cursor=page.next_cursor
    )


@router.post("/transactions", status_code=201)
def credit_wallet(
    name: TenantPath, body: WalletCredit, session: SessionDep, admin: AdminDep
) -> WalletTransactionOut:
    """A top-up or an adjustment by a platform admin (opens the wallet: the tenant is metered
    from then on)."""
    entry = wallets.credit(session, name, body.kind, body.amount, actor=admin.user, note=body.note)
    audit.record(
        session, admin.user, f"wallet.{body.kind}", name, amount=body.amount, note=body.note
    )
    return transaction_out(entry)


@router.put("/members/{user}")
def set_member_budget(
    name: TenantPath,
    user: UserPath,
    body: MemberBudgetIn,
    session: SessionDep,
    principal: PrincipalDep,
) -> MemberBudgetOut:
    require_tenant_role(principal, name, MANAGE_ROLES)
    tenants.get_tenant(session, name)
    row = wallets.set_member_budget(session, name, user, body.budget)
    audit.record(session, principal.user, "wallet.budget", f"{name}/{user}", budget=body.budget)
    return member_budget_out(row)


@router.delete("/members/{user}", status_code=204)
def delete_member_budget(
    name: TenantPath, user: UserPath, session: SessionDep, principal: PrincipalDep
) -> Response:
    require_tenant_role(principal, name, MANAGE_ROLES)
    wallets.delete_member_budget(session, name, user)
    audit.record(session, principal.user, "wallet.budget.delete", f"{name}/{user}")
    return Response(status_code=204)
