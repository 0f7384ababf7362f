// 登记码条: the codes just made, one slip each (code, terminal, village, QR code), for
// printing and handing to the site managers.
import qrcode from "../../vendor/qrcode.mjs";
import { dateTime } from "../fmt.js";
import { el, h2, empty, button } from "../ui.js";

function qr(text) {
  const q = qrcode(0, "M");
  q.addData(text);
  q.make();
  const img = el("img", { class: "qr", alt: `QR ${text}` });
  img.src = q.createDataURL(4, 2);
  return img;
}

export async function render(root) {
  const slips = JSON.parse(sessionStorage.getItem("yj-slips") || "[]");
  root.append(el("p", { class: "no-print" }, el("a", { href: "#/fleet" }, "← 返回终端 Back to terminals")),
    h2("终端登记码", "Enrollment slips"));
  if (!slips.length) { root.append(empty("还没有生成登记码。请在「终端」页勾选终端后生成。", "No codes made yet.")); return; }
  root.append(el("p", { class: "no-print" }, button("打印 Print", () => window.print(), "primary"),
    " 登记码只显示这一次，请打印或抄下。 Codes are shown only once."));
  root.append(el("div", { class: "slips", id: "slips" }, slips.map((s) => el("div", { class: "slip" },
    qr(s.code),
    el("div", {}, el("p", { class: "slip-code" }, s.code),
      el("p", {}, `终端 ${s.terminal_id}`), el("p", {}, `${s.unit} ${s.village}`),
      el("p", { class: "small" }, `${dateTime(s.expires_at)} 前有效`),
      el("p", { class: "small" }, "在终端上选「登记」，输入或扫描此码。"))))));
}
