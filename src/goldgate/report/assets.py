"""The HTML report's inline style and script: no CDN, so the file works offline and as a CI artifact.

The script does two things only: sort the tables marked `sortable`, and run the case browser over the
JSON embedded in the page, rendering rows a page at a time (and a case's details on click) so a
10,000-case run opens at once.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--err:#9a6700;--mut:#57606a;--line:#d0d7de;--bg:#f6f8fa;--acc:#0969da}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
header{padding:18px 28px;border-bottom:1px solid var(--line);background:var(--bg)}
header h1{margin:0 0 4px;font-size:20px}
main{padding:8px 28px 40px;max-width:1400px}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 8px}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{padding:4px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}
table.sortable th:after{content:" \\2195";color:#8c959f;font-size:11px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.pass,.passed,.swap,.better{background:var(--ok)}
.fail,.failed,.keep,.worse{background:var(--bad)}
.error,.insufficient{background:var(--err)}
.skipped,.neutral{background:#8c959f}
.muted{color:var(--mut)}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:118px}
.card b{display:block;font-size:20px}
code,pre{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{white-space:pre-wrap;word-break:break-word;background:var(--bg);padding:8px;border-radius:6px;margin:4px 0}
.heat td{width:34px;height:26px;text-align:center;font-size:11px;border:1px solid #fff;padding:2px}
.heat th.rot{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:500;font-size:11px;padding:4px 2px}
.heat th.row{font-weight:500;font-size:11px;text-align:right}
#filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0;position:sticky;top:0;background:#fff;
  padding:8px 0;z-index:2;border-bottom:1px solid var(--line)}
#filters select,#filters input{font:inherit;padding:3px 6px;border:1px solid var(--line);border-radius:6px}
#filters input[type=search]{min-width:260px}
#cases .case{border-bottom:1px solid var(--line);padding:6px 4px;cursor:pointer}
#cases .case:hover{background:var(--bg)}
#cases .row{display:grid;grid-template-columns:70px 190px 170px 1fr 1fr 90px 80px;gap:10px;align-items:baseline}
#cases .row span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
#cases .detail{cursor:auto;padding:8px 0 4px 80px}
#cases .detail img{max-width:360px;max-height:260px;border:1px solid var(--line);border-radius:4px}
.verdict{margin:4px 0;padding:4px 8px;border-left:3px solid var(--line)}
svg text{font:11px system-ui,sans-serif;fill:#1f2328}
"""

JS = r"""
(function(){
'use strict';
function sortTable(th){
  var table=th.closest('table'),body=table.tBodies[0],idx=Array.prototype.indexOf.call(th.parentNode.children,th);
  var asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';
  var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){
    var x=a.cells[idx].dataset.v!==undefined?a.cells[idx].dataset.v:a.cells[idx].textContent;
    var y=b.cells[idx].dataset.v!==undefined?b.cells[idx].dataset.v:b.cells[idx].textContent;
    var nx=parseFloat(x),ny=parseFloat(y),c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));
    return asc?c:-c;});
  rows.forEach(function(r){body.appendChild(r);});
}
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){sortTable(th);});});

var src=document.getElementById('goldgate-data');
if(!src)return;
var data=JSON.parse(src.textContent),cases=data.cases,suites=data.suites;
var list=document.getElementById('cases'),count=document.getElementById('case-count');
var fSuite=document.getElementById('f-suite'),fStatus=document.getElementById('f-status'),
    fLabel=document.getElementById('f-label'),fText=document.getElementById('f-text');
var PAGE=200,shown=0,hits=[];
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
function opt(sel,value,text){var o=el('option',null,text);o.value=value;sel.appendChild(o);}
suites.forEach(function(s,i){opt(fSuite,String(i),s);});
data.labels.forEach(function(l){opt(fLabel,l,l);});
function str(v){return v===null||v===undefined?'':(typeof v==='string'?v:JSON.stringify(v));}
function haystack(c){
  if(c._h===undefined)c._h=(c.id+' '+str(c.e)+' '+str(c.o)+' '+(c.m||'')+' '+str(c.i)).toLowerCase();
  return c._h;}
function filter(){
  var s=fSuite.value,st=fStatus.value,l=fLabel.value,q=fText.value.trim().toLowerCase();
  hits=[];
  for(var i=0;i<cases.length;i++){
    var c=cases[i];
    if(s!==''&&String(c.s)!==s)continue;
    if(st!==''&&c.st!==st)continue;
    if(l!==''&&c.el!==l&&c.ol!==l)continue;
    if(q&&haystack(c).indexOf(q)<0)continue;
    hits.push(i);}
  list.textContent='';shown=0;more();
}
function more(){
  var end=Math.min(hits.length,shown+PAGE),frag=document.createDocumentFragment();
  for(;shown<end;shown++)frag.appendChild(row(cases[hits[shown]]));
  list.appendChild(frag);
  count.textContent=hits.length+' of '+cases.length+' cases'+(shown<hits.length?' (showing '+shown+'; scroll for more)':'');
}
function row(c){
  var d=el('div','case'),r=el('div','row');
  var b=el('span');b.appendChild(el('span','badge '+c.st,c.st));r.appendChild(b);
  r.appendChild(el('span','muted',suites[c.s]));r.appendChild(el('span',null,c.id+(c.r?' #'+c.r:'')));
  r.appendChild(el('span',null,'expected: '+(c.el!==undefined?c.el:str(c.e))));
  r.appendChild(el('span',null,'output: '+(c.ol!==undefined?c.ol:str(c.o))));
  r.appendChild(el('span','muted',c.c!==undefined?'$'+c.c.toFixed(6):''));
  r.appendChild(el('span','muted',(c.l!==undefined?Math.round(c.l*1000)+' ms':'')+(c.k?' cached':'')));
  d.appendChild(r);
  d.addEventListener('click',function(ev){
    if(ev.target.closest('.detail'))return;
    var open=d.querySelector('.detail');if(open){open.remove();return;}
    d.appendChild(detail(c));});
  return d;
}
function block(parent,title,value){
  if(value===undefined||value===null||value==='')return;
  parent.appendChild(el('div','muted',title));parent.appendChild(el('pre',null,str(value)));}
function detail(c){
  var x=el('div','detail');
  if(c.i){
    x.appendChild(el('div','muted','inputs'));
    Object.keys(c.i).forEach(function(k){
      var v=c.i[k];
      if(typeof v==='string'&&v.indexOf('data:image/')===0){var im=el('img');im.src=v;im.alt=k;x.appendChild(im);}
      else x.appendChild(el('pre',null,k+': '+str(v)));});}
  block(x,'expected',c.e);block(x,'output',c.o);block(x,'message',c.m);
  (c.j||[]).forEach(function(v){
    var w=el('div','verdict');w.appendChild(el('span','badge '+(v.verdict==='pass'?'pass':'fail'),v.verdict));
    w.appendChild(document.createTextNode(' judge '+v.judge+(v.calibrated?'':' (uncalibrated)')+': '+(v.rationale||'')));
    x.appendChild(w);});
  var meta=[];if(c.c!==undefined)meta.push('cost $'+c.c.toFixed(6));if(c.l!==undefined)meta.push('latency '+Math.round(c.l*1000)+' ms');
  meta.push(c.k?'cached':'not cached');if(c.n)meta.push(c.n);
  x.appendChild(el('div','muted',meta.join(' · ')));
  return x;
}
[fSuite,fStatus,fLabel].forEach(function(e){e.addEventListener('change',filter);});
var timer=null;fText.addEventListener('input',function(){clearTimeout(timer);timer=setTimeout(filter,150);});
var sentinel=document.getElementById('more');
if('IntersectionObserver' in window){
  new IntersectionObserver(function(es){if(es[0].isIntersecting&&shown<hits.length)more();}).observe(sentinel);}
sentinel.addEventListener('click',function(){if(shown<hits.length)more();});
filter();
document.body.dataset.ready='1';
})();
"""
